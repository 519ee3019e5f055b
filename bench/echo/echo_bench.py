#!/usr/bin/env python3
"""Run the TCP echo benchmark: mpg's Reactor against Go's goroutine-per-connection server.

Workloads (the netpoller issue's, so the goroutine echo server can join later):
    pingpong  512-byte ping-pong over 1,000 connections
    stream    512-byte messages streamed over 4 connections (64 KiB in flight each)

Each (repetition, workload) starts every server afresh, in an order rotated per repetition so
slow drifts of the machine hit every server alike, and runs the same client (echo_client) at
it. Reported per server: the median over repetitions of messages/s, p99 latency, and the
server's CPU time per message (utime+stime from /proc/<pid>/stat across the client's run,
warm-up included, divided by every message echoed in that run). The last column is the ratio
reactor/go (for CPU per message and p99, below 1 means the reactor is better).

A server whose binary is missing shows as "n/a": the goroutine echo server (mpg's netpoller)
has its row in SERVERS already and appears once its binary exists.

Usage:
    python3 bench/echo/echo_bench.py --bin build/bin [--reps 3] [--seconds 2] [--warmup 0.5]
                                     [--loops 2] [--json out.json]
Exit status 1 if a server or the client failed, else 0 (a report, not a test).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# SERVERS: name -> (binary, argv builder given the worker count). Order = table columns.
SERVERS: dict[str, tuple[str, object]] = {
    "reactor": ("echo_reactor", lambda n: ["--loops", str(n)]),
    "goroutine": ("echo_goroutine", lambda n: ["--procs", str(n)]),  # mpg netpoller, later
    "go": ("go_echo", lambda n: ["-procs", str(n)]),
}
WORKLOADS: dict[str, list[str]] = {
    "pingpong": ["--mode", "pingpong", "--conns", "1000", "--size", "512"],
    "stream": ["--mode", "stream", "--conns", "4", "--size", "512", "--window", "65536"],
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: state is fields[0], utime is field 14 of stat(5), i.e. [11].
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def run_one(bin_dir: str, server: str, workload: str, a) -> dict:
    binary, argv = SERVERS[server]
    path = os.path.join(bin_dir, binary)
    cmd_args = argv(a.loops)
    p = subprocess.Popen(
        [path] + (["-host", "127.0.0.1", "-port", "0"] if binary == "go_echo" else ["--host", "127.0.0.1", "--port", "0"]) + cmd_args,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        if not line.startswith("listening "):
            raise RuntimeError(f"{binary}: no 'listening' line: {line!r}")
        port = int(line.split()[1])
        cpu0 = cpu_seconds(p.pid)
        client = [os.path.join(bin_dir, "echo_client"), "--port", str(port),
                  "--warmup", str(a.warmup), "--seconds", str(a.seconds)] + WORKLOADS[workload]
        out = subprocess.run(client, capture_output=True, text=True,
                             timeout=a.warmup + a.seconds + 30)
        cpu1 = cpu_seconds(p.pid)
        if out.returncode != 0:
            raise RuntimeError(f"echo_client against {binary} failed: {out.stderr.strip()}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["cpu_us_per_msg"] = (cpu1 - cpu0) * 1e6 / max(1, r["messages_total"])
        return r
    finally:
        p.send_signal(2)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--loops", type=int, default=2, help="server threads (reactor loops, GOMAXPROCS)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--json", help="write every run here")
    a = ap.parse_args()
    if not os.access(os.path.join(a.bin, "echo_client"), os.X_OK):
        print(f"echo_bench: {a.bin}/echo_client not found (build the echo_client target)", file=sys.stderr)
        return 1
    servers = [s for s in SERVERS if os.access(os.path.join(a.bin, SERVERS[s][0]), os.X_OK)]
    workloads = a.workloads.split(",")
    runs: dict[tuple[str, str], list[dict]] = {}
    failed = False
    t0 = time.time()
    for rep in range(a.reps):
        for w in workloads:
            order = servers[rep % len(servers):] + servers[:rep % len(servers)]
            for s in order:
                try:
                    runs.setdefault((w, s), []).append(run_one(a.bin, s, w, a))
                except Exception as e:  # a failed run is reported, the others still run
                    print(f"echo_bench: {w}/{s}: {e}", file=sys.stderr)
                    failed = True

    def med(w: str, s: str, key: str):
        v = [r[key] for r in runs.get((w, s), [])]
        return statistics.median(v) if v else None

    def fmt(v, key):
        if v is None:
            return "n/a"
        return f"{v:,.0f}" if key == "msgs_per_s" else f"{v:,.1f}" if key == "p99_us" else f"{v:.2f}"

    metrics = [("msgs_per_s", "msgs/s"), ("p99_us", "p99 us"), ("cpu_us_per_msg", "CPU us/msg")]
    cols = list(SERVERS)
    print(f"TCP echo, {a.reps} reps x {a.seconds:g} s (+{a.warmup:g} s warm-up), "
          f"{a.loops} server threads, medians; {time.time() - t0:.0f} s")
    header = f"| {'workload':<9} | {'metric':<11} | " + " | ".join(f"{c:>10}" for c in cols) + " | reactor/go |"
    print(header)
    print("|" + "|".join("-" * len(x) for x in header.strip("|").split("|")) + "|")
    for w in workloads:
        for key, label in metrics:
            vals = {c: med(w, c, key) for c in cols}
            ratio = (vals["reactor"] / vals["go"]) if vals.get("reactor") and vals.get("go") else None
            print(f"| {w:<9} | {label:<11} | " + " | ".join(f"{fmt(vals[c], key):>10}" for c in cols)
                  + f" | {('%.2f' % ratio) if ratio else 'n/a':>10} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({f"{w}/{s}": v for (w, s), v in runs.items()}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
