#!/usr/bin/env python3
"""Preemption benchmarks: mpg (build/bin/mpg_preempt_bench) against Go (build/bin/go_preempt).

Runs both programs alternately --reps times and prints medians [min-max]:
  ticker_lateness  a 1 ms ticker read by a goroutine while CPU-bound goroutines without calls
                   occupy every P: lateness of each tick (p50, p99, max, microseconds).
                   mpg at its default 10 ms time slice and at 1 ms; Go at its fixed 10 ms.
  cpu_bound        4 goroutines computing at procs=2 (ms): mpg with asynchronous preemption on
                   vs off, the cost of the machinery (target: at most 2%).
  syscall_getpid   ns per getpid system call wrapped as a blocking call (mpg::blocking; Go's
                   syscall.Syscall does entersyscall/exitsyscall around it), with the bare call
                   (raw_getpid) and mpg::blocking around nothing (blocking_noop).
Usage: python3 tools/bench_preempt.py [--bin build/bin] [--reps 5] [--seconds 1]
"""
import argparse
import json
import statistics
import subprocess
import sys


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({out.returncode}): {out.stderr[-2000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0)
    a = ap.parse_args()
    vals = {}
    for _ in range(a.reps):
        for prog, prefix in (("mpg_preempt_bench", "mpg"), ("go_preempt", "go")):
            args = [f"{a.bin}/{prog}"] + ([str(a.seconds)] if prefix == "mpg" else [f"-seconds={a.seconds}"])
            for rec in run(args):
                for k, v in rec.items():
                    if k != "name":
                        vals.setdefault((prefix, rec["name"], k), []).append(float(v))

    def cell(prefix, name, key):
        xs = vals.get((prefix, name, key))
        if not xs:
            return None, "n/a"
        m = statistics.median(xs)
        return m, f"{m:,.0f} [{min(xs):,.0f}-{max(xs):,.0f}]" if m >= 100 else f"{m:.1f} [{min(xs):.1f}-{max(xs):.1f}]"

    print(f"repetitions: {a.reps}, alternating mpg and Go; medians [min-max]\n")
    print("| ticker lateness (us) | p50 | p99 | max | p99 ratio to Go |")
    print("|---|---|---|---|---|")
    go99, _ = cell("go", "ticker_lateness", "p99_us")
    for label, prefix, name in (("Go (10 ms slice)", "go", "ticker_lateness"),
                                ("mpg, 10 ms slice", "mpg", "ticker_lateness"),
                                ("mpg, 1 ms slice", "mpg", "ticker_lateness/slice=1ms")):
        p99, p99s = cell(prefix, name, "p99_us")
        ratio = f"{p99 / go99:.3f}" if p99 is not None and go99 else "n/a"
        print(f"| {label} | {cell(prefix, name, 'p50_us')[1]} | {p99s} | {cell(prefix, name, 'max_us')[1]} | {ratio} |")
    on, ons = cell("mpg", "cpu_bound", "ms")
    off, offs = cell("mpg", "cpu_bound/async=off", "ms")
    print("\n| cpu_bound (ms) | async preemption on | off | on/off |")
    print("|---|---|---|---|")
    print(f"| mpg | {ons} | {offs} | {on / off:.3f} |" if on and off else "| mpg | n/a | n/a | n/a |")
    print("\n| call (ns) | mpg | Go |")
    print("|---|---|---|")
    print(f"| getpid as a blocking call | {cell('mpg', 'syscall_getpid', 'ns')[1]} | {cell('go', 'syscall_getpid', 'ns')[1]} |")
    print(f"| bare getpid | {cell('mpg', 'raw_getpid', 'ns')[1]} | |")
    print(f"| mpg::blocking around nothing | {cell('mpg', 'blocking_noop', 'ns')[1]} | |")


if __name__ == "__main__":
    main()
