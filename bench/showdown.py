#!/usr/bin/env python3
"""The showdown: "MPG or Reactor, which wins?" measured on this machine, in one run.

Runs, one server at a time on loopback, the HTTP plaintext load of bench/http/http_load.py
(wrk, keep-alive, not pipelined and pipelined 16 deep) and its idle-connection memory runs
against: the floor server, nginx with 1 and 2 workers, Go's net/http, a raw Go
goroutine-per-connection server, and mpg-httpd on each model (goroutine, reactor, hybrid; run
--bare, so every server does the same work: no middleware, like nginx's `return 200`), each
with its default threads and with one (-1), plus mpg-httpd's goroutine model with its Ps pinned
to CPUs (the seed's P-binding claim). Then the
runtime's micro-benchmarks against Go (tools/bench.py, one repetition). Prints the tables,
the seed's claims and issue 6's targets beside what was measured, and writes results/<timestamp>/ (results.json,
report.md, charts as SVG and PNG through gnuplot) and results/latest/.

    python3 bench/showdown.py [--quick | --full] [--bin build/bin] [--out results] [--no-micro]

Default: one repetition of 2 s load runs at 100, 1,000 and 10,000 connections and idle runs at
1,000 and 10,000, plus the micro table (one repetition). --quick: about a minute (100 and 1,000 connections, 1,000 idle, no micro).
--full: three repetitions, interleaved A B C / B C A / C A B, longer runs, 18,500 idle (the most
nginx-1 holds under the 20,000-descriptor cap; see http_load.IDLE_MAX).
--smoke: CI's end-to-end check (100 connections, 2 s runs, 100 idle, no micro).

Fairness: every server sends the same response bytes (nginx's differ only in its Server and
Connection fields), runs alone on the same machine with the same wrk settings (one wrk thread,
keep-alive, the same Lua scripts), and shares the 2 cores with wrk without pinning: the kernel
schedules both; the report shows the cores each used (server / wrk / rest of the machine).
How a seed claim is judged: it holds when the measured ratio points the same way as the
claimed one and is at least the square root of it (at least half the effect, in log terms).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "http"))
import http_load as hl  # noqa: E402

# mpg-httpd's three models with their defaults (a P or a loop per CPU), and each with one
# thread (--procs 1, --loops 1), as the floor and nginx-1 run: on this 2-core machine wrk takes
# a core, and the second thread costs every server something (nginx-2 against nginx-1 shows it).
MPG = ["mpg-goroutine", "mpg-reactor", "mpg-hybrid"]
ONE_THREAD = {"mpg-goroutine": "mpg-goroutine-1", "mpg-reactor": "mpg-reactor-1", "mpg-hybrid": "mpg-hybrid-1"}
PEERS = ["floor", "nginx-1", "nginx-2", "go-nethttp", "go-raw"]
PINNED = "mpg-goroutine-pin"


def register_servers() -> None:
    for model in ("goroutine", "reactor", "hybrid"):
        argv = ["mpg-httpd", "--model", model, "--listen", "127.0.0.1:0", "--bare"]
        hl.add_server(f"mpg-{model}", argv)
        hl.add_server(ONE_THREAD[f"mpg-{model}"], argv + (["--loops", "1"] if model == "reactor" else ["--procs", "1"]))
    hl.add_server(PINNED, ["mpg-httpd", "--model", "goroutine", "--listen", "127.0.0.1:0", "--bare", "--pin"])


def options(a) -> hl.Options:
    o = hl.Options(bin_dir=a.bin)
    if a.smoke:
        o.reps, o.seconds, o.warmup, o.conns, o.idle = 1, 2.0, 0.0, (100,), (100,)
    elif a.quick:
        o.reps, o.seconds, o.warmup, o.conns, o.idle = 1, 1.0, 0.0, (100, 1000), (1000,)
    elif a.full:
        o.reps, o.seconds, o.warmup, o.conns, o.idle = 3, 5.0, 1.0, (100, 1000, 10000), (1000, 10000, hl.IDLE_MAX)
    else:
        o.reps, o.seconds, o.warmup, o.conns, o.idle = 1, 2.0, 0.5, (100, 1000, 10000), (1000, 10000)
    return o


def stat(summ: dict, server: str, conns: int, mode: str, metric: str) -> dict | None:
    """The summary (median, min, max, n) of one load metric, or None if not measured."""
    return summ["load"].get((server, conns, mode), {}).get(metric)


def med(summ: dict, server: str, conns: int, mode: str, metric: str):
    m = stat(summ, server, conns, mode, metric)
    return m["median"] if m else None


def idle_bytes(summ: dict, server: str) -> tuple[int, float] | None:
    """(level, bytes per connection) at the largest idle level measured for `server`."""
    best = None
    for (s, level), m in summ["idle"].items():
        if s == server and m["bytes_per_conn"] and (best is None or level > best[0]):
            best = (level, m["bytes_per_conn"]["median"])
    return best


def judge(claimed: float, measured: float | None) -> str:
    """claimed > 1; measured is the same quotient (> 1: the claim's direction)."""
    if measured is None:
        return "n/a"
    if measured >= math.sqrt(claimed):
        return "holds"
    if measured > 1:
        return "weaker"
    return "does not hold"


def claims(summ: dict, res: dict, o: hl.Options) -> list[dict]:
    """The seed's claims (design.md §8) beside the measured values."""
    out = []
    big = max(o.conns)

    # Each row is written so that the seed's first figure is the larger: the claimed ratio is
    # first / second (> 1), and the measured ratio is the same quotient of what was measured.
    def row(claim, seed_a, seed_b, unit, got_a, got_b, note=""):
        claimed = seed_a / seed_b
        ratio = got_a / got_b if got_a is not None and got_b else None
        out.append({"claim": claim, "seed": f"{seed_a:,g} vs {seed_b:,g} {unit}",
                    "measured": (f"{_num(got_a)} vs {_num(got_b)} {unit}" if got_a is not None and got_b is not None
                                 else "n/a"),
                    "claimed_ratio": claimed, "measured_ratio": ratio, "verdict": judge(claimed, ratio), "note": note})

    g, r = "mpg-goroutine", "mpg-reactor"
    row(f"{big:,} conns: reactor QPS vs goroutine QPS", 26500, 8200, "req/s",
        med(summ, r, big, "plain", "rps"), med(summ, g, big, "plain", "rps"))
    row(f"{big:,} conns: goroutine p50 latency vs reactor", 12, 3.8, "ms",
        _ms(med(summ, g, big, "plain", "p50_us")), _ms(med(summ, r, big, "plain", "p50_us")),
        "seed: mean latency; wrk's p50 here")
    row(f"{big:,} conns: goroutine memory vs reactor", 1200, 320, "MB",
        _mb(med(summ, g, big, "plain", "rss_kb")), _mb(med(summ, r, big, "plain", "rss_kb")),
        "RSS under load")
    gi, ri = idle_bytes(summ, g), idle_bytes(summ, r)
    base_g = _base_rss(summ, g)
    base_r = _base_rss(summ, r)
    ext = lambda b, i: (b + 100_000 * i[1] / 1024) / 1024 if i and b is not None else None
    row("100,000 conns: goroutine memory vs reactor (extrapolated)", 2100, 860, "MB",
        ext(base_g, gi), ext(base_r, ri),
        f"extrapolated from {f'{gi[0]:,}' if gi else '?'} idle connections: RSS before + 100,000 x bytes per connection"
        " (this machine caps a process at 20,000 descriptors)")
    p = PINNED
    pc = 1000 if 1000 in o.conns else o.conns[-1]
    row(f"P binding: p50 latency, unpinned vs pinned ({pc:,} conns)", 120, 65, "us",
        _us(med(summ, g, pc, "plain", "p50_us")), _us(med(summ, p, pc, "plain", "p50_us")),
        "mpg-httpd --pin (Config::pin_procs) against the same without")
    row(f"P binding: QPS, pinned vs unpinned ({pc:,} conns)", 142000, 85000, "req/s",
        med(summ, p, pc, "plain", "rps"), med(summ, g, pc, "plain", "rps"))
    return out


# TARGETS: issue 6's bars per model: CPU per request at 1,000 connections over the floor's (at
# most), pipelined req/s at 100 connections over the floor's (at least); p99 at 1,000 against
# nginx-1's and the idle-memory bars are common or listed below.
TARGETS = {"mpg-reactor": (1.05, 0.8), "mpg-hybrid": (1.1, 0.7), "mpg-goroutine": (1.15, 0.7)}


# NOISY_PEER: a peer whose repetitions spread wider than this (max over min) makes a target's
# mark unsure: on this VM the kernel's share of a request moves between two modes ~20% apart
# from one server start to the next (docs/showdown-harness.md), and a median of three can land
# on either.
NOISY_PEER = 1.2


def targets(summ: dict, o: hl.Options) -> list[dict]:
    """Issue 6's targets, each as a ratio against a peer measured in the same run, for each model
    with its default threads and with one thread. Judged on medians; each also carries the ratio
    of the two sides' best repetitions and the peer's own spread, so a mark that rests on a
    noisy peer says so."""
    out = []
    big = 1000 if 1000 in o.conns else max(o.conns)
    small = 100 if 100 in o.conns else min(o.conns)

    def add(what: str, server: str, got: dict | None, peer: str, base: dict | None, bound: float, at_most: bool):
        # at_most: lower is better (CPU, latency, memory), so a side's best repetition is its min.
        ratio = got["median"] / base["median"] if got and base and base["median"] else None
        best_key = "min" if at_most else "max"
        best = got[best_key] / base[best_key] if got and base and base[best_key] else None
        peer_spread = base["max"] / base["min"] if base and base["min"] else None
        met = None if ratio is None else (ratio <= bound if at_most else ratio >= bound)
        out.append({"target": what, "server": server, "peer": peer, "ratio": ratio, "best_ratio": best,
                    "peer_spread": peer_spread, "noisy": peer_spread is not None and peer_spread > NOISY_PEER,
                    "bound": f"{'<=' if at_most else '>='} {bound:g}", "met": met})

    idle_level = 10000 if 10000 in o.idle else (max(o.idle) if o.idle else None)

    def idle_b(server: str):
        return summ["idle"].get((server, idle_level), {}).get("bytes_per_conn")

    for base_name, (cpu_bound, pipe_bound) in TARGETS.items():
        for s in (base_name, ONE_THREAD[base_name]):
            add(f"CPU per request, {big:,} conns, over the floor's", s, stat(summ, s, big, "plain", "cpu_us_per_req"),
                "floor", stat(summ, "floor", big, "plain", "cpu_us_per_req"), cpu_bound, True)
            if "pipelined" in o.modes:
                add(f"req/s pipelined {o.depth} deep, {small:,} conns, over the floor's", s,
                    stat(summ, s, small, "pipelined", "rps"), "floor", stat(summ, "floor", small, "pipelined", "rps"),
                    pipe_bound, False)
            add(f"p99, {big:,} conns, over nginx-1's", s, stat(summ, s, big, "plain", "p99_us"), "nginx-1",
                stat(summ, "nginx-1", big, "plain", "p99_us"), 1.0, True)
            if s == base_name:
                # Also against the nginx with as many workers as the model has threads by default
                # (a P or a loop per CPU): with wrk on the same cores, a second thread's turn to
                # run costs tail latency to either (docs/servers.md, "Why two Ps lose p99").
                add(f"p99 against nginx-2 (two workers; the default threads: one per CPU, {os.cpu_count()} here), {big:,} conns", s,
                    stat(summ, s, big, "plain", "p99_us"), "nginx-2", stat(summ, "nginx-2", big, "plain", "p99_us"),
                    1.0, True)
            if idle_level:
                peer, bound = ("go-nethttp", 0.4) if base_name == "mpg-goroutine" else ("nginx-1", 1.0)
                add(f"RSS per idle connection, {idle_level:,}, over {peer}'s", s, idle_b(s), peer, idle_b(peer), bound,
                    True)
    return out


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _ms(us):
    return us / 1000 if us is not None else None


def _us(us):
    return us


def _mb(kb):
    return kb / 1024 if kb is not None else None


def _base_rss(summ: dict, server: str):
    vals = [m["rss_before_kb"]["median"] for (s, _), m in summ["idle"].items() if s == server and m["rss_before_kb"]]
    return min(vals) if vals else None


def targets_md(summ: dict, o: hl.Options) -> str:
    """The report's section on issue 6's targets (markdown)."""
    lines = ["\n## Issue 6's targets, measured here\n\nEach model with its default threads (a P or a loop per "
             "CPU) and with one (`-1`: --procs 1 or --loops 1, as the floor and nginx-1 run).\n\n"
             "Judged on medians. 'best reps' is the ratio of the two sides' best repetitions; 'peer spread' "
             f"is the peer's own max over min across repetitions: above {NOISY_PEER:g} the mark is printed "
             "with a '?', as the peer's median may sit on either of this machine's two kernel-time modes "
             "(docs/showdown-harness.md).\n\n"
             "| target | server | measured ratio | best reps | peer spread | bound | met |\n"
             "|---|---|---|---|---|---|---|\n"]
    def num(v):
        return f"{v:.2f}" if v is not None else "n/a"

    for t in targets(summ, o):
        m = "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**") + (" ?" if t["noisy"] else "")
        lines.append(f"| {t['target']} | {t['server']} | {num(t['ratio'])} | {num(t['best_ratio'])} | "
                     f"{num(t['peer_spread'])} | {t['bound']} | {m} |\n")
    return "".join(lines)


def machine() -> dict:
    def cmd(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip() or \
                subprocess.run(argv, capture_output=True, text=True, timeout=10).stderr.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "n/a"
    cpu = "n/a"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "gxx": cmd(["g++", "--version"]).splitlines()[0] if shutil.which("g++") else "n/a",
            "go": cmd(["go", "version"]) if shutil.which("go") else "n/a",
            "nginx": cmd(["/usr/sbin/nginx", "-v"]), "wrk": cmd(["wrk", "-v"]).splitlines()[0] if shutil.which("wrk") else "n/a",
            "commit": cmd(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])}


def chart(outdir: str, summ: dict, o: hl.Options, names: list[str]) -> list[str]:
    gp = shutil.which("gnuplot")
    if not gp:
        return []
    made = []
    specs = [("rps_plain", "plain", "rps", 1.0, "requests/s (not pipelined)"),
             ("rps_pipelined", "pipelined", "rps", 1.0, f"requests/s (pipelined {o.depth})"),
             ("cpu_per_request", "plain", "cpu_us_per_req", 1.0, "server CPU us per request (not pipelined)"),
             ("p99_ms", "plain", "p99_us", 1e-3, "p99 latency ms (not pipelined)")]
    for name, mode, metric, scale, title in specs:
        # Only the servers with a figure in this chart: gnuplot refuses a histogram column with no
        # valid point (the pinned server runs only plain at 1,000 connections) and leaves an empty
        # file behind.
        table = {s: [med(summ, s, c, mode, metric) for c in o.conns] for s in names}
        cols = [s for s in names if any(v is not None for v in table[s])]
        dat = os.path.join(outdir, f"{name}.dat")
        with open(dat, "w") as f:
            f.write("conns " + " ".join(cols) + "\n")
            for i, c in enumerate(o.conns):
                vals = [table[s][i] for s in cols]
                f.write(f"{c} " + " ".join(f"{v * scale:.3f}" if v is not None else "NaN" for v in vals) + "\n")
        made += _histogram(gp, outdir, name, title, "connections", len(cols))
    dat = os.path.join(outdir, "idle_bytes.dat")
    icols = [n for n in names if any(k[0] == n for k in summ["idle"])]
    with open(dat, "w") as f:
        f.write("conns " + " ".join(icols) + "\n")
        for level in o.idle:
            vals = []
            for s in icols:
                m = summ["idle"].get((s, level))
                vals.append(m["bytes_per_conn"]["median"] if m and m["bytes_per_conn"] else None)
            f.write(f"{level} " + " ".join(f"{v:.0f}" if v is not None else "NaN" for v in vals) + "\n")
    made += _histogram(gp, outdir, "idle_bytes", "RSS bytes per idle keep-alive connection", "idle connections",
                       len(icols), logscale=True)
    return made


def claims_chart(outdir: str, cl: list[dict]) -> list[str]:
    """The seed's ratios beside the measured ones, one pair of bars per claim (log scale)."""
    gp = shutil.which("gnuplot")
    if not gp:
        return []
    with open(os.path.join(outdir, "claims.dat"), "w") as f:
        f.write("claim seed measured\n")
        for i, c in enumerate(cl):
            m = c["measured_ratio"]
            f.write(f"C{i + 1} {c['claimed_ratio']:.4f} {m if m is not None and m > 0 else 'NaN'}\n")
    made = _histogram(gp, outdir, "claims", "seed claims: claimed ratio vs measured (C1..Cn as in report.md)",
                      "claim", 2, logscale=True)
    return made


def _histogram(gp: str, outdir: str, name: str, title: str, xlabel: str, ncols: int, logscale=False) -> list[str]:
    made = []
    for term, ext in (("svg size 1000,560 dynamic", "svg"), ("pngcairo size 1000,560", "png")):
        script = "\n".join([
            f"set terminal {term}", f"set output '{name}.{ext}'", f"set title '{title}'",
            "set style data histograms", "set style histogram clustered gap 1", "set style fill solid 0.85 border -1",
            "set key outside right top", "set grid ytics", f"set xlabel '{xlabel}'", "set yrange [0:*]",
            "set logscale y" if logscale else "",
            f"plot for [i=2:{ncols + 1}] '{name}.dat' using i:xtic(1) title columnheader(i)", ""])
        p = subprocess.run([gp], input=script, text=True, cwd=outdir, capture_output=True)
        out = os.path.join(outdir, f"{name}.{ext}")
        if p.returncode == 0 and os.path.getsize(out) > 0:
            made.append(f"{name}.{ext}")
        else:
            # No chart rather than an empty file that looks like one.
            if os.path.exists(out):
                os.remove(out)
            print(f"showdown: gnuplot could not draw {name}.{ext}: {p.stderr.strip()}", file=sys.stderr)
    return made


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    ap.add_argument("--out", default=os.path.join(REPO, "results"))
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true")
    g.add_argument("--full", action="store_true")
    g.add_argument("--smoke", action="store_true")
    ap.add_argument("--no-micro", action="store_true", help="skip the runtime micro-benchmarks")
    a = ap.parse_args()
    a.bin = os.path.abspath(a.bin)
    register_servers()
    o = options(a)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    outdir = os.path.join(a.out, stamp)
    os.makedirs(outdir, exist_ok=True)
    t0 = time.monotonic()

    def progress(msg: str) -> None:
        sys.stderr.write("\r\033[K" + f"showdown {time.monotonic() - t0:5.0f} s | " + msg[:100])
        sys.stderr.flush()

    names = PEERS + MPG + list(ONE_THREAD.values())
    res = hl.run_all(names, o, progress)
    # P binding: the goroutine model pinned, at 1,000 connections, not pipelined.
    pin_conns = 1000 if 1000 in o.conns else o.conns[-1]
    po = hl.Options(**{**o.__dict__, "conns": (pin_conns,), "modes": ("plain",), "idle": ()})
    pres = hl.run_all([PINNED], po, progress)
    res["runs"] += pres["runs"]
    res["failures"] += pres["failures"]
    micro_md = None
    if not (a.quick or a.smoke or a.no_micro):
        progress("micro-benchmarks: mpg against Go and Boost.Fiber (tools/bench.py, 1 rep)")
        p = subprocess.run([sys.executable, os.path.join(REPO, "tools", "bench.py"), "--bin", a.bin, "--reps", "1",
                            "--out", os.path.join(outdir, "micro.json"), "--markdown", os.path.join(outdir, "micro.md")],
                           capture_output=True, text=True)
        if p.returncode != 0:
            res["failures"].append("micro-benchmarks: " + (p.stderr.strip().splitlines() or ["failed"])[-1])
        if os.path.exists(os.path.join(outdir, "micro.md")):
            with open(os.path.join(outdir, "micro.md")) as f:
                micro_md = f.read()
    sys.stderr.write("\r\033[K")
    summ = hl.summarize(res)
    cl = claims(summ, res, o)
    info = machine()
    charts = chart(outdir, summ, o, names + [PINNED]) + claims_chart(outdir, cl)
    elapsed = time.monotonic() - t0

    import io
    buf = io.StringIO()
    buf.write(f"# mpg showdown, {time.strftime('%Y-%m-%d %H:%M')}\n\n")
    buf.write(f"Command: `{' '.join(sys.argv)}` ({'smoke' if a.smoke else 'quick' if a.quick else 'full' if a.full else 'default'} mode, "
              f"{elapsed:.0f} s). Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}. "
              f"{info['gxx']}; {info['go']}; {info['nginx']}; {info['wrk']}; mpg {info['commit']}.\n\n")
    buf.write("Every server answers GET /plaintext with the same response shape (docs/showdown-harness.md); "
              "mpg-httpd runs --bare (no middleware). Servers run one at a time, each afresh, with the same wrk "
              "settings; server and wrk share the 2 cores without pinning (the cores column shows what each "
              f"used). {o.reps} repetition(s), the order rotated each time; medians, (min-max) when more than one; "
              "x floor = server CPU per request over the floor server's.\n\n```\n")
    hl.print_tables(res, names, o, buf)
    pin = summ["load"].get((PINNED, 1000, "plain"))
    unpin = summ["load"].get(("mpg-goroutine", 1000, "plain"))
    if pin and unpin:
        buf.write(f"\nP binding (mpg-httpd goroutine model, 1,000 connections, not pipelined): pinned "
                  f"{hl.fmt(pin['rps'])} req/s, p50 {hl.fmt(pin['p50_us'], 1e-3, 2)} ms, CPU "
                  f"{hl.fmt(pin['cpu_us_per_req'], 1, 2)} us/req; unpinned {hl.fmt(unpin['rps'])} req/s, p50 "
                  f"{hl.fmt(unpin['p50_us'], 1e-3, 2)} ms, CPU {hl.fmt(unpin['cpu_us_per_req'], 1, 2)} us/req\n")
    buf.write("```\n\n## The seed's claims, measured here\n\n")
    buf.write("| | claim | seed | measured | seed ratio | measured ratio | verdict | note |\n|---|---|---|---|---|---|---|---|\n")
    for i, c in enumerate(cl):
        mr = f"{c['measured_ratio']:.2f}" if c["measured_ratio"] is not None else "n/a"
        buf.write(f"| C{i + 1} | {c['claim']} | {c['seed']} | {c['measured']} | {c['claimed_ratio']:.2f} | {mr} | {c['verdict']} | {c['note']} |\n")
    buf.write("\nA claim holds when the measured ratio points the same way and is at least the square root of the "
              "seed's (half the effect or more, in log terms); 'weaker' when it points the same way but less.\n")
    buf.write(targets_md(summ, o))
    if micro_md:
        buf.write("\n## The runtime's micro-benchmarks (one repetition)\n\n" + micro_md + "\n")
    if charts:
        buf.write("\n## Charts\n\n" + "\n".join(f"![{c}]({c})" for c in charts if c.endswith(".svg")) + "\n")
    if res["failures"]:
        buf.write("\n## Failures\n\n" + "\n".join(f"- {f}" for f in res["failures"]) + "\n")
    bad = hl.bad_runs(res)
    if bad:
        buf.write("\n## Runs with errors (do not trust these rows)\n\n" + "\n".join(f"- {b}" for b in bad) + "\n")
    report = buf.getvalue()
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write(report)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"machine": info, "argv": sys.argv, "options": o.__dict__, "results": res, "claims": cl,
                   "elapsed_s": elapsed}, f, indent=1, default=str)
    latest = os.path.join(a.out, "latest")
    if os.path.islink(latest) or os.path.isfile(latest):
        os.remove(latest)
    elif os.path.isdir(latest):
        shutil.rmtree(latest)
    shutil.copytree(outdir, latest)
    print(report)
    print(f"written: {outdir}/ (report.md, results.json, {len(charts)} charts) and {latest}/")
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
