#!/usr/bin/env python3
"""Run the TCP echo benchmark: mpg's goroutine server and Reactor against Go's server.

Servers: echo_goroutine (a goroutine per connection on mpg's netpoller) as "goroutine" (--pool:
a buffer borrowed only while the connection has data, mpg's way) and as "gor-owned" (a buffer
per connection, Go's way), echo_reactor (mpg's Reactor), go_echo (Go's goroutine per connection)
as "go" and as "go-pool" (-pool: the same borrowing through syscall.RawConn), with the same
client and workloads:
    pingpong  512-byte ping-pong over 1,000 connections
    stream    512-byte messages streamed over 4 connections (64 KiB in flight each)

Each (repetition, workload) starts every server afresh, in an order rotated per repetition so
slow drifts of the machine hit every server alike, and runs the same client (echo_client) at
it. Reported per server: the median over repetitions of messages/s, p99 latency, and the
server's CPU time per message (utime+stime from /proc/<pid>/stat across the client's run,
warm-up included, divided by every message echoed in that run), and, where `perf` can count
tracepoints, the server's epoll_wait (all variants) and futex calls per message over the same
span. The last columns are the ratios goroutine/go, gor-owned/go, reactor/go and
goroutine/go-pool (for CPU per message, p99 and syscalls, below 1 means mpg is better). A server
whose binary is missing shows as "n/a".

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
    "goroutine": ("echo_goroutine", lambda n: ["--procs", str(n), "--pool"]),
    "gor-owned": ("echo_goroutine", lambda n: ["--procs", str(n)]),
    "go": ("go_echo", lambda n: ["-procs", str(n)]),
    "go-pool": ("go_echo", lambda n: ["-procs", str(n), "-pool"]),
}
WORKLOADS: dict[str, list[str]] = {
    "pingpong": ["--mode", "pingpong", "--conns", "1000", "--size", "512"],
    "stream": ["--mode", "stream", "--conns", "4", "--size", "512", "--window", "65536"],
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Syscalls counted per message with perf's tracepoints (grouped: every epoll wait variant).
EPOLL_EVENTS = ["syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_epoll_pwait", "syscalls:sys_enter_epoll_pwait2"]
FUTEX_EVENTS = ["syscalls:sys_enter_futex"]


def perf_works() -> bool:
    try:
        out = subprocess.run(["perf", "stat", "-x,", "-e", ",".join(EPOLL_EVENTS + FUTEX_EVENTS), "--", "true"],
                             capture_output=True, text=True, timeout=20)
        return out.returncode == 0 and "<not supported>" not in out.stderr and "sys_enter_futex" in out.stderr
    except (OSError, subprocess.TimeoutExpired):
        return False


def perf_start(pid: int):
    return subprocess.Popen(["perf", "stat", "-x,", "-e", ",".join(EPOLL_EVENTS + FUTEX_EVENTS), "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def perf_stop(p) -> dict:
    p.send_signal(2)
    _, err = p.communicate(timeout=20)
    counts = {"epoll": 0, "futex": 0}
    for line in err.splitlines():
        f = line.split(",")
        if len(f) < 3 or not f[0].strip().isdigit():
            continue
        if f[2] in EPOLL_EVENTS:
            counts["epoll"] += int(f[0])
        elif f[2] in FUTEX_EVENTS:
            counts["futex"] += int(f[0])
    return counts


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
        perf = perf_start(p.pid) if a.perf else None
        cpu0 = cpu_seconds(p.pid)
        client = [os.path.join(bin_dir, "echo_client"), "--port", str(port),
                  "--warmup", str(a.warmup), "--seconds", str(a.seconds)] + WORKLOADS[workload]
        out = subprocess.run(client, capture_output=True, text=True,
                             timeout=a.warmup + a.seconds + 30)
        cpu1 = cpu_seconds(p.pid)
        counts = perf_stop(perf) if perf else None
        if out.returncode != 0:
            raise RuntimeError(f"echo_client against {binary} failed: {out.stderr.strip()}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        msgs = max(1, r["messages_total"])
        r["cpu_us_per_msg"] = (cpu1 - cpu0) * 1e6 / msgs
        if counts:
            r["epoll_per_msg"] = counts["epoll"] / msgs
            r["futex_per_msg"] = counts["futex"] / msgs
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
    ap.add_argument("--no-perf", dest="perf", action="store_false", help="do not count syscalls with perf")
    a = ap.parse_args()
    if a.perf and not perf_works():
        print("echo_bench: perf cannot count syscall tracepoints here; syscall rows show n/a", file=sys.stderr)
        a.perf = False
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
        v = [r[key] for r in runs.get((w, s), []) if key in r]
        return statistics.median(v) if v else None

    def fmt(v, key):
        if v is None:
            return "n/a"
        return f"{v:,.0f}" if key == "msgs_per_s" else f"{v:,.1f}" if key == "p99_us" else \
            f"{v:.3f}" if key.endswith("_per_msg") and key != "cpu_us_per_msg" else f"{v:.2f}"

    metrics = [("msgs_per_s", "msgs/s"), ("p99_us", "p99 us"), ("cpu_us_per_msg", "CPU us/msg"),
               ("epoll_per_msg", "epoll/msg"), ("futex_per_msg", "futex/msg")]
    cols = list(SERVERS)
    print(f"TCP echo, {a.reps} reps x {a.seconds:g} s (+{a.warmup:g} s warm-up), "
          f"{a.loops} server threads, medians; {time.time() - t0:.0f} s")
    # (numerator, denominator) of each ratio column.
    ratios = [(c, "go") for c in ("goroutine", "gor-owned", "reactor") if c in cols]
    if "go-pool" in cols:
        ratios.append(("goroutine", "go-pool"))
    header = f"| {'workload':<9} | {'metric':<11} | " + " | ".join(f"{c:>10}" for c in cols) + \
        "".join(f" | {c + '/' + d:>12}" for c, d in ratios) + " |"
    print(header)
    print("|" + "|".join("-" * len(x) for x in header.strip("|").split("|")) + "|")
    for w in workloads:
        for key, label in metrics:
            vals = {c: med(w, c, key) for c in cols}
            if all(v is None for v in vals.values()):
                continue
            line = f"| {w:<9} | {label:<11} | " + " | ".join(f"{fmt(vals[c], key):>10}" for c in cols)
            for c, d in ratios:
                ratio = (vals[c] / vals[d]) if vals.get(c) is not None and vals.get(d) else None
                line += f" | {('%.2f' % ratio) if ratio is not None else 'n/a':>12}"
            print(line + " |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({f"{w}/{s}": v for (w, s), v in runs.items()}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
