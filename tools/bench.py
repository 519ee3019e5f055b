#!/usr/bin/env python3
"""Run mpg's micro-benchmarks against its Go and Boost.Fiber peers and report.

Three programs are run from --bin, alternating per repetition so that slow
drifts of the machine (thermal, noisy neighbours) hit every runtime alike:

    mpg_micro_bench  --benchmark_format=json   (Google Benchmark, "mpg/<case>")
    go_micro                                   (one JSON object per line)
    mpg_fiber_bench  --benchmark_format=json   (Google Benchmark, "fiber/<case>",
                                                "raw/context_switch")

For each case and runtime the report gives the median over the repetitions
and the min-max range, then the mpg/Go ratio of the medians against the
project's target. A missing program or case shows as "n/a".

How a value is read:
  * go_micro prints {"name": case, "value": v, "unit": u} lines.
  * Google Benchmark entries are named "<runtime>/<case>" (suffixes that
    Google Benchmark appends, such as "/real_time" or "/iterations:5", are
    ignored). The value is taken from, in order of preference:
      1. a user counter "value" (already in the case's unit) or one named
         after the unit ("bytes_per_goroutine", "ms");
      2. a user counter "ns_per_op" (nanoseconds per operation);
      3. items_per_second (batch benchmarks: ns/op = 1e9 / items_per_second);
      4. real_time per iteration, converted from time_unit.
    ns values are converted to ms for cases measured in ms (skynet_1e6).

The exit status is 0 whenever every program ran cleanly, whether or not the
targets hold (this is a report). It is 1 if a program crashed, exited
non-zero, timed out, printed unusable output, or reported a benchmark error.

Usage:
    python3 tools/bench.py --bin build/bin [--reps 5] [--cases a,b ...]
                           [--out results/bench.json]
                           [--markdown docs/bench-table.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

# Table rows: case name -> (unit, target for mpg/Go or None, Boost.Fiber twin).
# A twin is the fiber benchmark shown in the Boost.Fiber column for that row.
CASES: dict[str, tuple[str, float | None, str | None]] = {
    "spawn_wait_1e6": ("ns/op", 0.25, "spawn_join_1e5"),
    "yield_pingpong_p1": ("ns/op", 0.5, "yield_pingpong_p1"),
    "chan_unbuf_pingpong_p1": ("ns/op", 0.5, "chan_unbuf_pingpong_p1"),
    "chan_unbuf_pingpong_p2": ("ns/op", 0.5, None),
    "chan_unbuf_pingpong_p1_timer": ("ns/op", None, None),
    "chan_buf1024_p2": ("ns/op", 0.8, None),
    "mutex_4_p2": ("ns/op", 1.0, None),
    "rss_parked_1e5": ("bytes/goroutine", 1.6, None),
    "skynet_1e6": ("ms", None, None),
}

# mpg's yield must also stay within this multiple of a raw Boost.Context
# round trip (two jump_fcontext calls).
YIELD_VS_RAW_TARGET = 3.0
RAW_SWITCH = ("raw", "context_switch")

# Boost.Fiber benchmarks that are not twins of a row but still worth running
# when their row is selected.
FIBER_EXTRAS = {"spawn_wait_1e6": ["spawn_join_1e5_pooled"],
                "yield_pingpong_p1": ["context_switch"]}

UNIT_SHORT = {"ns/op": "ns", "bytes/goroutine": "B", "ms": "ms"}
TIME_UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
GBENCH_SUFFIX = re.compile(r"^(real_time|manual_time|process_time)$|:")


@dataclass
class Program:
    runtime: str  # label used in names and in the report ("mpg", "go", "fiber")
    binary: str
    kind: str  # "gbench" or "jsonl"


PROGRAMS = [
    Program("mpg", "mpg_micro_bench", "gbench"),
    Program("go", "go_micro", "jsonl"),
    Program("fiber", "mpg_fiber_bench", "gbench"),
]


@dataclass
class Results:
    # (runtime, case) -> list of values in `units[(runtime, case)]`
    samples: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    units: dict[tuple[str, str], str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def add(self, runtime: str, case: str, value: float, unit: str) -> None:
        key = (runtime, case)
        self.samples.setdefault(key, []).append(value)
        self.units.setdefault(key, unit)

    def stats(self, runtime: str, case: str) -> dict | None:
        values = self.samples.get((runtime, case))
        if not values:
            return None
        return {"median": statistics.median(values), "min": min(values),
                "max": max(values), "n": len(values),
                "unit": self.units[(runtime, case)], "samples": values}


def case_unit(case: str) -> str:
    return CASES[case][0] if case in CASES else "ns/op"


def from_ns(ns: float, unit: str) -> float:
    return ns / 1e6 if unit == "ms" else ns


# --------------------------------------------------------------- parsing --

def split_gbench_name(name: str, default_runtime: str) -> tuple[str, str]:
    """"mpg/spawn_wait_1e6/real_time" -> ("mpg", "spawn_wait_1e6")."""
    parts = name.split("/")
    if len(parts) == 1:
        return default_runtime, name
    kept = [p for p in parts[1:] if not GBENCH_SUFFIX.search(p)]
    return parts[0], "/".join(kept) if kept else parts[0]


def gbench_value(entry: dict, unit: str) -> float | None:
    """Per-op value of one Google Benchmark entry, in `unit` (see module doc)."""
    explicit = ["value"]
    if unit == "bytes/goroutine":
        explicit.append("bytes_per_goroutine")
    elif unit == "ms":
        explicit.append("ms")
    for key in explicit:
        if isinstance(entry.get(key), (int, float)):
            return float(entry[key])
    if unit == "bytes/goroutine":
        return None  # a time is no stand-in for a memory footprint
    if isinstance(entry.get("ns_per_op"), (int, float)):
        return from_ns(float(entry["ns_per_op"]), unit)
    ips = entry.get("items_per_second")
    if isinstance(ips, (int, float)) and ips > 0:
        return from_ns(1e9 / ips, unit)
    real = entry.get("real_time")
    scale = TIME_UNIT_NS.get(entry.get("time_unit", "ns"))
    if isinstance(real, (int, float)) and scale is not None:
        return from_ns(float(real) * scale, unit)
    return None


def parse_gbench(prog: Program, stdout: str, res: Results) -> bool:
    if not stdout.strip():
        # Google Benchmark prints nothing when --benchmark_filter matches nothing.
        res.warnings.append(f"{prog.binary}: no benchmarks matched the selected cases")
        return True
    try:
        doc = json.loads(stdout)
    except json.JSONDecodeError as exc:
        res.failures.append(f"{prog.binary}: output is not JSON ({exc})")
        return False
    ok = True
    for entry in doc.get("benchmarks", []):
        if entry.get("run_type", "iteration") != "iteration":
            continue  # aggregates (mean/median/stddev of --benchmark_repetitions)
        name = entry.get("name", "?")
        runtime, case = split_gbench_name(name, prog.runtime)
        if entry.get("error_occurred"):
            res.failures.append(f"{prog.binary}: {name}: {entry.get('error_message', 'error')}")
            ok = False
            continue
        unit = case_unit(case)
        value = gbench_value(entry, unit)
        if value is None:
            res.warnings.append(f"{prog.binary}: {name}: no usable value for unit {unit}")
            continue
        res.add(runtime, case, value, unit)
    return ok


def parse_jsonl(prog: Program, stdout: str, res: Results) -> bool:
    ok = True
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
            case, value, unit = rec["name"], float(rec["value"]), rec.get("unit", "ns/op")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            res.failures.append(f"{prog.binary}: unusable line {line[:80]!r}")
            ok = False
            continue
        if case in CASES and unit != case_unit(case):
            res.warnings.append(f"{prog.binary}: {case} reported in {unit}, expected {case_unit(case)}")
        res.add(prog.runtime, case, value, unit)
    return ok


# --------------------------------------------------------------- running --

def program_args(prog: Program, selected: list[str] | None, extra_gbench: list[str]) -> list[str] | None:
    """Command-line arguments for one program, or None if it has nothing to run."""
    if prog.kind == "jsonl":
        if selected is None:
            return []
        mine = [c for c in selected if c in CASES]
        return ["-cases=" + ",".join(mine)] if mine else None

    args = ["--benchmark_format=json", *extra_gbench]
    if selected is not None:
        names = set(selected)
        if prog.runtime == "fiber":
            for case in selected:
                twin = CASES.get(case, (None, None, None))[2]
                if twin:
                    names.add(twin)
                names.update(FIBER_EXTRAS.get(case, []))
        pattern = "|".join(re.escape(n) for n in sorted(names))
        args.append(f"--benchmark_filter=^[^/]+/({pattern})(/|$)")
    return args


def run_program(prog: Program, path: str, args: list[str], timeout: float, res: Results) -> bool:
    cmd = [path, *args]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        res.failures.append(f"{prog.binary}: timed out after {timeout:.0f} s")
        return False
    except OSError as exc:
        res.failures.append(f"{prog.binary}: cannot run ({exc})")
        return False
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exit status {proc.returncode}")
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        res.failures.append(f"{prog.binary}: {how}" + (f": {tail}" if tail else ""))
        # Keep whatever it managed to report before dying.
    parse = parse_gbench if prog.kind == "gbench" else parse_jsonl
    parsed = parse(prog, proc.stdout, res)
    log(f"  {prog.runtime:<5} {os.path.basename(path)}: "
        f"{'ok' if proc.returncode == 0 and parsed else 'FAILED'} ({elapsed:.1f} s)")
    return proc.returncode == 0 and parsed


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------- reporting --

def first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0] if text and out.returncode == 0 else "n/a"
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"


def machine_info() -> dict:
    cpu = "n/a"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    uname = platform.uname()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "host": uname.node,
        "nproc": usable,
        "cpus_online": os.cpu_count(),
        "cpu": cpu,
        "kernel": f"{uname.system} {uname.release} {uname.machine}",
        "gxx": first_line(["g++", "--version"]),
        "go": first_line(["go", "version"]),
        "python": platform.python_version(),
        "git": first_line(["git", "describe", "--always", "--dirty"]),
    }


def fmt_num(v: float) -> str:
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_stat(st: dict | None, note: str = "") -> str:
    if st is None:
        return "n/a"
    unit = UNIT_SHORT.get(st["unit"], st["unit"])
    text = f"{fmt_num(st['median'])} {unit}"
    if st["n"] > 1:
        text += f" [{fmt_num(st['min'])}–{fmt_num(st['max'])}]"
    return text + note


def build_report(res: Results, info: dict, command: str, reps: int,
                 rows: list[str]) -> tuple[str, dict]:
    lines = ["# mpg micro-benchmarks", ""]
    lines.append(f"- machine: {info['host']}, {info['nproc']} CPUs usable "
                 f"({info['cpus_online']} online), {info['cpu']}")
    lines.append(f"- kernel: {info['kernel']}")
    lines.append(f"- compilers: {info['gxx']}; {info['go']}; python {info['python']}")
    lines.append(f"- source: git {info['git']}; run {info['date']}")
    lines.append(f"- command: `{command}`")
    lines.append(f"- repetitions: {reps} per program, alternating mpg, Go, Boost.Fiber; "
                 "cells show median [min–max]")
    lines.append("")
    lines.append("| case | mpg | Go | ratio mpg/Go | target | holds? | Boost.Fiber |")
    lines.append("|---|---|---|---|---|---|---|")

    summary: dict = {}
    footnotes: dict[str, str] = {}
    shown: set[tuple[str, str]] = set()
    for case in rows:
        unit, target, twin = CASES[case]
        mpg, go = res.stats("mpg", case), res.stats("go", case)
        ratio = mpg["median"] / go["median"] if mpg and go and go["median"] else None
        if ratio is None or target is None:
            holds = "n/a"
        else:
            holds = "yes" if ratio <= target else "**NO**"
        fiber, note = None, ""
        if twin:
            fiber = res.stats("fiber", twin)
            shown.add(("fiber", twin))
            if twin != case and fiber:
                mark = "*" * (len(footnotes) + 1)
                footnotes[mark] = f"Boost.Fiber column for {case} is fiber/{twin} (one thread)."
                note = mark
        shown.update({("mpg", case), ("go", case)})
        lines.append(f"| {case} ({UNIT_SHORT[unit]}) | {fmt_stat(mpg)} | {fmt_stat(go)} | "
                     f"{f'{ratio:.2f}' if ratio is not None else 'n/a'} | "
                     f"{f'≤ {target:g}' if target is not None else '—'} | {holds} | "
                     f"{fmt_stat(fiber, note) if twin else '—'} |")
        summary[case] = {"unit": unit, "target": target, "ratio_mpg_go": ratio,
                         "holds": None if holds == "n/a" else holds == "yes",
                         "mpg": mpg, "go": go, "fiber": fiber,
                         "fiber_case": twin}
    if footnotes:
        lines.append("")
        lines += [f"{mark} {text}  " for mark, text in footnotes.items()]

    # Yield against a raw Boost.Context round trip.
    raw = res.stats(*RAW_SWITCH)
    shown.add(RAW_SWITCH)
    extra: dict = {}
    if "yield_pingpong_p1" in rows:
        lines.append("")
        if raw:
            trip = 2 * raw["median"]
            spread = (f" [{fmt_num(2 * raw['min'])}–{fmt_num(2 * raw['max'])}]"
                      if raw["n"] > 1 else "")
            lines.append(f"raw/context_switch: {fmt_num(raw['median'])} ns one-way, "
                         f"{fmt_num(trip)} ns round trip{spread}.  ")
            for runtime, label in (("mpg", "mpg"), ("fiber", "Boost.Fiber")):
                st = res.stats(runtime, "yield_pingpong_p1")
                if st is None:
                    lines.append(f"{label} yield_pingpong_p1 / raw round trip: n/a  ")
                    continue
                r = st["median"] / trip
                verdict = ""
                if runtime == "mpg":
                    verdict = (f" (target ≤ {YIELD_VS_RAW_TARGET:g}: "
                               f"{'yes' if r <= YIELD_VS_RAW_TARGET else '**NO**'})")
                    extra["mpg_yield_over_raw_round_trip"] = r
                lines.append(f"{label} yield_pingpong_p1 / raw round trip = {r:.2f}{verdict}  ")
            extra["raw_round_trip_ns"] = trip
        else:
            lines.append(f"raw/context_switch: n/a (mpg yield / raw round trip target ≤ "
                         f"{YIELD_VS_RAW_TARGET:g}: n/a)")

    others = sorted(k for k in res.samples if k not in shown)
    if others:
        lines += ["", "Other measurements:", ""]
        for runtime, case in others:
            lines.append(f"- {runtime}/{case}: {fmt_stat(res.stats(runtime, case))}")

    if res.missing:
        lines += ["", "Not found (reported as n/a): " + ", ".join(res.missing)]
    if res.warnings:
        lines += ["", "Warnings:", ""] + [f"- {w}" for w in dict.fromkeys(res.warnings)]
    if res.failures:
        lines += ["", "FAILURES:", ""] + [f"- {f}" for f in res.failures]
    lines.append("")

    doc = {
        "machine": info, "command": command, "reps": reps, "cases": summary,
        "extra": extra,
        "all": {f"{r}/{c}": res.stats(r, c) for (r, c) in sorted(res.samples)},
        "missing": res.missing, "warnings": res.warnings, "failures": res.failures,
    }
    return "\n".join(lines), doc


def write_file(path: str, text: str) -> None:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


# ------------------------------------------------------------------ main --

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="build/bin", help="directory holding the benchmark programs")
    ap.add_argument("--reps", type=int, default=5, help="runs of each program (default 5)")
    ap.add_argument("--cases", nargs="+", metavar="CASE",
                    help="cases to run (space- or comma-separated; default all)")
    ap.add_argument("--out", help="write the full results as JSON here")
    ap.add_argument("--markdown", help="write the report (markdown) here")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per program run")
    ap.add_argument("--gbench-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for the Google Benchmark programs (repeatable), "
                         "e.g. --gbench-arg=--benchmark_min_time=0.2")
    args = ap.parse_args()
    if args.reps < 1:
        ap.error("--reps must be at least 1")

    selected = None
    if args.cases:
        selected = [c for item in args.cases for c in item.split(",") if c.strip()]
        selected = [c.strip() for c in selected]
    rows = [c for c in CASES if selected is None or c in selected]

    res = Results()
    if selected:
        unknown = [c for c in selected if c not in CASES]
        if unknown:
            res.warnings.append("cases without a table row (only Google Benchmark "
                                "programs are asked for them): " + ", ".join(unknown))

    runnable: list[tuple[Program, str, list[str]]] = []
    for prog in PROGRAMS:
        path = os.path.join(args.bin, prog.binary)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            res.missing.append(path)
            log(f"note: {path} not found; its column will read n/a")
            continue
        pargs = program_args(prog, selected, args.gbench_arg)
        if pargs is not None:
            runnable.append((prog, os.path.abspath(path), pargs))

    clean = True
    for rep in range(1, args.reps + 1):
        log(f"[rep {rep}/{args.reps}]")
        for prog, path, pargs in runnable:
            clean &= run_program(prog, path, pargs, args.timeout, res)

    command = " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:])
    report, doc = build_report(res, machine_info(), "python3 " + command, args.reps, rows)
    print(report)
    if args.markdown:
        write_file(args.markdown, report)
    if args.out:
        write_file(args.out, json.dumps(doc, indent=2) + "\n")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
