#!/usr/bin/env python3
"""Job service under load: 50 concurrent `medallion submit` calls against a scheduler with two
executors (separate processes), each run the example pipeline on its own lakehouse. Prints how
many completed, p50/p99 submit latency (the `medallion submit` process, start to exit), the time
until all runs ended, and the scheduler's peak RSS.

    python3 tests/bench/api_load.py --bin <medallion> [--runs 50] [--concurrent-runs 4]
"""

import argparse
import concurrent.futures
import os
import pathlib
import shutil
import socket
import subprocess
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--concurrent-runs", type=int, default=4)
    p.add_argument("--work", default="target/bench-api")
    args = p.parse_args()
    work = pathlib.Path(args.work).absolute()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    subprocess.run([args.bin, "generate", "--dataset", "example", "--orders", "2000", "--out",
                    str(work / "landing")], check=True, capture_output=True)
    port, api = free_port(), free_port()
    token = "bench-token"
    procs = []
    log = lambda name: open(work / f"{name}.log", "w")
    scheduler = subprocess.Popen([args.bin, "scheduler", "--bind", f"127.0.0.1:{port}", "--external-host",
                                  "127.0.0.1", "--api-bind", f"127.0.0.1:{api}", "--api-tokens", token,
                                  "--concurrent-runs", str(args.concurrent_runs)],
                                 stdout=log("scheduler"), stderr=subprocess.STDOUT)
    procs.append(scheduler)
    wait_port(port)
    wait_port(api)
    for i in range(2):
        flight, grpc = free_port(), free_port()
        (work / f"executor{i}").mkdir()
        procs.append(subprocess.Popen([args.bin, "executor", "--scheduler", f"127.0.0.1:{port}", "--bind-host",
                                       "127.0.0.1", "--external-host", "127.0.0.1", "--port", str(flight),
                                       "--grpc-port", str(grpc), "--concurrent-tasks", "2", "--work-dir",
                                       str(work / f"executor{i}")], stdout=log(f"executor{i}"),
                                      stderr=subprocess.STDOUT))
        wait_port(flight)
    time.sleep(2)
    base = ["--api", f"http://127.0.0.1:{api}", "--token", token]
    spec = str(pathlib.Path(__file__).resolve().parents[2] / "pipelines/example/pipeline.toml")

    def submit(i):
        started = time.monotonic()
        out = subprocess.run([args.bin, "submit", *base, "--spec", spec, "--landing", str(work / "landing"),
                              "--lakehouse", str(work / f"lake{i}")], capture_output=True, text=True)
        return time.monotonic() - started, out.returncode, out.stdout.strip()

    try:
        began = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.runs) as pool:
            results = list(pool.map(submit, range(args.runs)))
        latencies = sorted(r[0] for r in results)
        ids = [r[2] for r in results if r[1] == 0]
        ended = {}
        while len(ended) < len(ids):
            for run_id in ids:
                if run_id in ended:
                    continue
                out = subprocess.run([args.bin, "status", *base, run_id], capture_output=True, text=True)
                state = out.stdout.split("\n")[0].rsplit(": ", 1)[-1]
                if state not in ("queued", "running"):
                    ended[run_id] = state
            time.sleep(0.5)
        total = time.monotonic() - began
        with open(f"/proc/{scheduler.pid}/status") as f:
            hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
        pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
        states = {s: list(ended.values()).count(s) for s in set(ended.values())}
        print(f"{args.runs} concurrent submissions: {len(ids)} accepted, final states {states}")
        print(f"submit latency (CLI process): p50 {pct(0.5) * 1000:.0f} ms, p99 {pct(0.99) * 1000:.0f} ms, "
              f"max {latencies[-1] * 1000:.0f} ms")
        print(f"all runs ended after {total:.1f}s ({args.concurrent_runs} at once, 2 executors × 2 task slots)")
        print(f"scheduler peak RSS: {hwm / 1024:.1f} MiB")
    finally:
        for p_ in procs:
            p_.kill()
        os._exit(0)


if __name__ == "__main__":
    main()
