#!/usr/bin/env python3
"""Run the HTTP core benchmark: mpg's ServerSession against Go's net/http, both without I/O.

mpg_http_bench (bench/http_bench.cpp) drives one ServerSession with the wrk plaintext request,
one per call (http/plaintext_1) or 16 pipelined per call (http/plaintext_16); go_http_core
(bench/peers/http) runs Go's unmodified net/http server on an in-memory connection fed the same
bytes, at GOMAXPROCS=1. Both report wall time and heap allocations per request. The programs
alternate per repetition; the table shows medians and the ratio mpg/go (below 1: mpg is faster).
mpg_http_bench's breakdown (parser_only, head_scanner_only, write_response) is printed too.

Usage:
    python3 bench/http_bench.py --bin build/bin [--reps 5]
Build first: cmake --build build --target mpg_http_bench go_http_core
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CASES = ["http/plaintext_1", "http/plaintext_16"]
PARTS = ["http/parser_only", "http/head_scanner_only", "http/write_response"]


def run_mpg(bin_dir: str) -> dict[str, tuple[float, float]]:
    out = subprocess.run([os.path.join(bin_dir, "mpg_http_bench"), "--benchmark_format=json",
                          "--benchmark_min_time=0.5"], check=True, capture_output=True, text=True)
    found = {}
    for b in json.loads(out.stdout)["benchmarks"]:
        # ns_per_req is an inverted rate: Google Benchmark writes it in seconds per request.
        found[b["name"]] = (b["ns_per_req"] * 1e9, b.get("allocs_per_req", float("nan")))
    return found


def run_go(bin_dir: str) -> dict[str, tuple[float, float]]:
    out = subprocess.run([os.path.join(bin_dir, "go_http_core")], check=True,
                         capture_output=True, text=True)
    values = {}
    for line in out.stdout.splitlines():
        r = json.loads(line)
        values[r["name"]] = r["value"]
    return {c: (values[c], values[c + "_allocs"]) for c in CASES}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    mpg_runs, go_runs = [], []
    for rep in range(args.reps):
        order = [run_mpg, run_go] if rep % 2 == 0 else [run_go, run_mpg]
        for f in order:
            (mpg_runs if f is run_mpg else go_runs).append(f(args.bin))
    med = lambda runs, case, i: statistics.median(r[case][i] for r in runs)
    print(f"{'case':<24}{'mpg ns/req':>12}{'go ns/req':>12}{'mpg/go':>8}"
          f"{'mpg allocs':>12}{'go allocs':>11}")
    for c in CASES:
        m, g = med(mpg_runs, c, 0), med(go_runs, c, 0)
        print(f"{c:<24}{m:>12.0f}{g:>12.0f}{m / g:>8.2f}"
              f"{med(mpg_runs, c, 1):>12.2f}{med(go_runs, c, 1):>11.1f}")
    for p in PARTS:
        print(f"{p:<24}{med(mpg_runs, p, 0):>12.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
