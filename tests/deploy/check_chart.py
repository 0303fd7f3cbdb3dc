#!/usr/bin/env python3
"""The Helm chart, offline: lint it, render it for the default, AWS and Azure values, validate
every manifest against the Kubernetes 1.33 schemas (strict), check what the manifests promise
(CronJob exit semantics, RBAC scope, probes, security contexts), reject bad values through
values.schema.json, and run checkov over the rendered manifests.

Needs helm-python-sdk, kubernetes-validate and checkov (`make setup` installs them).
Exit status 0 only when every check passed.
"""

import argparse
import copy
import pathlib
import subprocess
import sys
import tempfile

import helm_python
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "medallion"
EXAMPLES = ROOT / "helm" / "examples"
KUBERNETES = "1.33.0"

failures = []


def mebibytes(quantity):
    """A Kubernetes memory quantity (`4Gi`, `512Mi`, `2G`, bytes) in MiB."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    text = str(quantity)
    for suffix, factor in sorted(units.items(), key=lambda u: -len(u[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor / 2**20
    return float(text) / 2**20


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def pipelines():
    """The repository's pipelines, as `--set-file pipelines.<name>=…` would pass them."""
    return {p.parent.name: p.read_text() for p in sorted((ROOT / "pipelines").glob("*/pipeline.toml"))}


def value_sets():
    base = {"pipelines": pipelines()}
    sets = {
        "default": {},
        "default-with-pipelines": base,
        "tls": {**base, "scheduler": {"tlsSecret": "medallion-tls"},
                "cronJobs": [{"name": "hourly", "schedule": "0 * * * *", "pipeline": "example"}]},
        "stream": {**base, "streams": [{"name": "clicks", "pipeline": "ecommerce",
                                        "select": ["clickstream_raw+"], "vars": {"kafka_bootstrap": "kafka:9092"},
                                        "triggerSeconds": 30}]},
    }
    for name in ("aws", "azure"):
        values = yaml.safe_load((EXAMPLES / f"values-{name}.yaml").read_text())
        values.update(base)
        sets[name] = values
    return sets


def render(values, namespace="medallion"):
    chart = helm_python.Chart.load(str(CHART))
    out = chart.render(values, name="medallion", namespace=namespace, is_install=True)
    docs = []
    for path, text in sorted(out.items()):
        if not path.endswith(".yaml"):
            continue
        docs += [(path, d) for d in yaml.safe_load_all(text) if d]
    return docs


def kinds(docs, kind):
    return [d for _, d in docs if d["kind"] == kind]


def lint(values, label):
    report = helm_python.lint(str(CHART), values, strict=True, kube_version=f"v{KUBERNETES}")
    bad = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    check(not bad, f"helm lint --strict ({label}): {bad or 'clean'}")


def validate(docs, label, workdir):
    files = []
    for i, (path, doc) in enumerate(docs):
        f = workdir / f"{label}-{i:02d}-{pathlib.Path(path).stem}.yaml"
        f.write_text(yaml.safe_dump(doc))
        files.append(str(f))
    r = subprocess.run(
        ["kubernetes-validate", "-k", KUBERNETES, "--strict", "--quiet", *files],
        capture_output=True,
        text=True,
    )
    check(r.returncode == 0, f"kubernetes-validate -k {KUBERNETES} --strict: {len(files)} manifests ({label})"
          + ("" if r.returncode == 0 else "\n" + r.stdout + r.stderr))
    return files


def container(doc):
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"], spec["template"]["spec"]["containers"][0]


def promises(docs, label):
    """What the chart's manifests must say, beyond being valid."""
    deployments = {d["metadata"]["name"]: d for d in kinds(docs, "Deployment")}
    scheduler = deployments["medallion-scheduler"]
    executor = deployments["medallion-executor"]
    for doc in kinds(docs, "Deployment") + kinds(docs, "CronJob"):
        pod, c = container(doc)
        name = doc["metadata"]["name"]
        check(pod["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]
              and c["securityContext"]["capabilities"]["drop"] == ["ALL"],
              f"{name}: non-root, read-only root fs, no capabilities ({label})")
        check("limits" in c["resources"] and "requests" in c["resources"], f"{name}: requests and limits ({label})")
    _, sc = container(scheduler)
    tls = any(a.startswith("--api-tls-cert=") for a in sc["args"])
    if tls:
        check(all(sc[p]["tcpSocket"]["port"] == "api" for p in ("startupProbe", "readinessProbe", "livenessProbe")),
              f"with TLS the scheduler probes the job port by TCP (the kubelet's gRPC probe has no TLS) ({label})")
        for cj in kinds(docs, "CronJob"):
            args = container(cj)[1]["args"]
            check("--api=https://medallion-scheduler.medallion.svc:50051" in args and "--ca-cert=/etc/medallion/tls/ca.crt" in args,
                  f"CronJob {cj['metadata']['name']} calls the job service over https with the CA ({label})")
    else:
        check(all(sc[p]["grpc"]["port"] == 50051 for p in ("startupProbe", "readinessProbe", "livenessProbe")),
              f"scheduler probes use the gRPC health service on the job port ({label})")
    check(scheduler["spec"]["replicas"] == 1 and scheduler["spec"]["strategy"]["type"] == "Recreate",
          f"one scheduler, replaced not doubled ({label})")
    epod, ec = container(executor)
    env = {e["name"]: e for e in ec["env"]}
    check(env["MEDALLION_EXTERNAL_HOST"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
          and "--bind-host=0.0.0.0" in ec["args"]
          and "--scheduler=medallion-scheduler.medallion.svc:50050" in ec["args"],
          f"executors bind 0.0.0.0, advertise the pod IP, find the scheduler by its Service ({label})")
    check(any(v["name"] == "work" and "emptyDir" in v for v in epod["volumes"]) and "--work-dir=/work" in ec["args"],
          f"executor shuffle files on an emptyDir ({label})")
    limit = ec.get("resources", {}).get("limits", {}).get("memory")
    pool = env.get("MEDALLION_MEMORY_LIMIT_MIB", {}).get("value")
    if limit is not None and pool is not None:
        check(int(pool) + 512 <= mebibytes(limit),
              f"executor memory pool {pool} MiB leaves room under its {limit} limit ({label})")
    check(epod["automountServiceAccountToken"] is False, f"executors get no Kubernetes token ({label})")
    autoscaled = any(a.startswith("--autoscale-deployment=") for a in sc["args"])
    check(("replicas" in executor["spec"]) != autoscaled,
          f"executor replicas set by the chart only without autoscaling ({label}, autoscaling={autoscaled})")
    roles = kinds(docs, "Role")
    if autoscaled:
        rules = roles[0]["rules"] if roles else []
        check(rules == [{"apiGroups": ["apps"], "resources": ["deployments"],
                         "resourceNames": ["medallion-executor"], "verbs": ["get", "patch"]}],
              f"scheduler RBAC: get and patch the executor Deployment only ({label})")
        check(container(scheduler)[0]["automountServiceAccountToken"] is True, f"autoscaling scheduler mounts its token ({label})")
    else:
        check(not roles and container(scheduler)[0]["automountServiceAccountToken"] is False,
              f"no RBAC and no token without autoscaling ({label})")
    for cj in kinds(docs, "CronJob"):
        pod, c = container(cj)
        job = cj["spec"]["jobTemplate"]["spec"]
        args = c["args"]
        check(cj["spec"]["concurrencyPolicy"] == "Forbid" and args[0] == "submit" and "--wait" in args
              and "--idempotency-key=$(JOB_NAME)" in args and pod["restartPolicy"] == "Never"
              and job["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [1],
              f"CronJob {cj['metadata']['name']}: submit --wait, Forbid, a failed run fails the Job ({label})")
        check(pod["serviceAccountName"] == "medallion-client", f"CronJob {cj['metadata']['name']} has no cloud identity ({label})")
    for stream in [d for d in kinds(docs, "Deployment") if "-stream-" in d["metadata"]["name"]]:
        pod, c = container(stream)
        args = c["args"]
        check(stream["spec"]["replicas"] == 1 and stream["spec"]["strategy"]["type"] == "Recreate"
              and args[:2] == ["run", "--continuous"]
              and "--scheduler=df://medallion-scheduler.medallion.svc:50050" in args
              and pod["terminationGracePeriodSeconds"] >= 60,
              f"stream {stream['metadata']['name']}: one continuous run on the release's scheduler, time to commit on stop ({label})")
        check(pod["serviceAccountName"] == container(scheduler)[0]["serviceAccountName"]
              and pod["automountServiceAccountToken"] is False,
              f"stream {stream['metadata']['name']}: the lakehouse identity, no Kubernetes token ({label})")
    for cm in kinds(docs, "ConfigMap"):
        mounted = {i["key"] for v in container(scheduler)[0]["volumes"] if v["name"] == "pipelines"
                   for i in v["configMap"].get("items", [])}
        check(mounted == set(cm.get("data") or {}), f"every pipeline in the ConfigMap is mounted ({label})")


def rejected(values, expect, label):
    try:
        render(values)
    except helm_python.HelmError as e:
        ok = expect in str(e)
        check(ok, f"bad values rejected: {label}" + ("" if ok else f" (message: {e})"))
        return
    check(False, f"bad values rejected: {label} (rendered without error)")


def bad_values():
    rejected({"executor": {"replicas": "three"}}, "replicas", "executor.replicas is a string")
    rejected({"executor": {"autoscaling": {"maxReplicas": 0}}}, "maxReplicas", "autoscaling.maxReplicas = 0")
    rejected({"scheduler": {"concurrentRun": 2}}, "concurrentRun", "a misspelt key")
    rejected({"cronJobs": [{"name": "x", "schedule": "0 * * * *"}]}, "pipeline", "a CronJob without a pipeline")
    rejected({"streams": [{"name": "x"}]}, "pipeline", "a stream without a pipeline")
    rejected({"cronJobs": [{"name": "x", "schedule": "0 * * * *", "pipeline": "p", "layers": ["platinum"]}]},
             "layers", "an unknown layer")
    rejected({"storage": {"lakehouse": "bucket/lake"}}, "lakehouse", "a lakehouse that is not a URL")
    rejected({"apiTokens": {"create": False}}, "existingSecret", "no tokens Secret at all")


def checkov(files):
    r = subprocess.run(
        ["checkov", "--skip-download", "--quiet", "--compact", "--framework", "kubernetes",
         *sum((["-f", f] for f in files), [])],
        capture_output=True,
        text=True,
    )
    summary = [line for line in r.stdout.splitlines() if "Passed checks" in line]
    check(r.returncode == 0, f"checkov on the rendered chart: {summary}" + ("" if r.returncode == 0 else "\n" + r.stdout[-6000:]))


def main():
    argparse.ArgumentParser(description=__doc__).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp)
        files = []
        for label, values in value_sets().items():
            lint(values, label)
            docs = render(copy.deepcopy(values))
            files += validate(docs, label, workdir)
            promises(docs, label)
        bad_values()
        checkov(files)
    print(f"\n{len(failures)} failed" if failures else "\nall chart checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
