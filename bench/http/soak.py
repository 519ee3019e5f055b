#!/usr/bin/env python3
"""Soak: each mpg-httpd model under --conns keep-alive connections for --seconds, with random
disconnects, reconnects and resets (bench/http/soak_client.cpp), sampling the server's open
descriptors and RSS every second.

Pass, per server: every response was correct (the client checks each echo byte for byte), the
descriptor count is back to its baseline after the clients leave, and the final RSS, sampled
--settle (3) seconds later, is within --rss-tolerance (5%) of the steady state (the median RSS over
the second half of the run).
Writes results/soak-<timestamp>/: samples.csv, soak.json, soak.svg and soak.png (gnuplot).

Usage:
    python3 bench/http/soak.py [--bin build/bin] [--seconds 600] [--conns 10000] [--rate 20000]
                               [--models goroutine,reactor,hybrid] [--out results]
Exit status 1 if any server failed a check.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_server(bin_dir: str, model: str) -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen([os.path.join(bin_dir, "mpg-httpd"), "--model", model, "--listen", "127.0.0.1:0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.startswith("listening "):
        p.kill()
        raise RuntimeError(f"mpg-httpd --model {model}: no 'listening' line: {line!r}")
    return p, int(line.split()[1])


def soak_one(bin_dir: str, model: str, a, progress) -> dict:
    srv, port = start_server(bin_dir, model)
    try:
        time.sleep(0.3)
        base_fds, base_rss = fd_count(srv.pid), rss_kb(srv.pid)
        client = subprocess.Popen([os.path.join(bin_dir, "soak_client"), "--port", str(port), "--conns", str(a.conns),
                                   "--seconds", str(a.seconds), "--rate", str(a.rate), "--disconnect", str(a.disconnect)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples = []
        t0 = time.time()
        while client.poll() is None:
            t = time.time() - t0
            samples.append({"t": round(t, 1), "fds": fd_count(srv.pid), "rss_kb": rss_kb(srv.pid)})
            progress(f"soak {model}: {t:5.0f}/{a.seconds:g} s, {samples[-1]['fds']} fds, "
                     f"{samples[-1]['rss_kb'] / 1024:.1f} MiB")
            time.sleep(1.0)
        out, err = client.communicate()
        # The clients are gone: give the server a moment to see every close.
        deadline = time.time() + 10
        while fd_count(srv.pid) > base_fds and time.time() < deadline:
            time.sleep(0.2)
        # Then let it settle: memory freed by the closes goes back to the kernel asynchronously
        # (mpg-httpd's scavenger looks once a second, as Go's background scavenger does).
        time.sleep(a.settle)
        end_fds, end_rss = fd_count(srv.pid), rss_kb(srv.pid)
        c = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        second_half = [s["rss_kb"] for s in samples if s["t"] >= a.seconds / 2] or [end_rss]
        steady = statistics.median(second_half)
        r = {
            "model": model, "client": c, "baseline_fds": base_fds, "end_fds": end_fds,
            "baseline_rss_kb": base_rss, "steady_rss_kb": steady, "end_rss_kb": end_rss,
            "peak_rss_kb": max([s["rss_kb"] for s in samples] or [end_rss]), "samples": samples,
        }
        r["checks"] = {
            "responses_correct": c.get("bad", 1) == 0 and c.get("ok", 0) > 0,
            "fds_back_to_baseline": end_fds <= base_fds,
            # Once the connections are gone RSS should not have crept up over the run: within
            # tolerance of the steady state, or lower.
            "rss_within_tolerance": end_rss <= steady * (1 + a.rss_tolerance),
        }
        r["pass"] = all(r["checks"].values())
        return r
    finally:
        srv.terminate()
        try:
            srv.wait(timeout=15)
        except subprocess.TimeoutExpired:
            srv.kill()


def chart(outdir: str, results: list[dict]) -> None:
    gp = shutil.which("gnuplot")
    csv = os.path.join(outdir, "samples.csv")
    with open(csv, "w") as f:
        f.write("model,t,fds,rss_kb\n")
        for r in results:
            for s in r["samples"]:
                f.write(f"{r['model']},{s['t']},{s['fds']},{s['rss_kb']}\n")
    if not gp:
        return
    for r in results:
        with open(os.path.join(outdir, f"{r['model']}.dat"), "w") as f:
            for s in r["samples"]:
                f.write(f"{s['t']} {s['fds']} {s['rss_kb'] / 1024:.2f}\n")
    plots_fd = ", ".join(f"'{r['model']}.dat' using 1:2 with lines title '{r['model']}'" for r in results)
    plots_rss = ", ".join(f"'{r['model']}.dat' using 1:3 with lines title '{r['model']}'" for r in results)
    for term, ext in (("svg size 900,600", "svg"), ("pngcairo size 900,600", "png")):
        script = (f"set terminal {term}\nset output 'soak.{ext}'\nset multiplot layout 2,1 title 'mpg-httpd soak'\n"
                  f"set ylabel 'open fds'\nplot {plots_fd}\nset ylabel 'RSS MiB'\nset xlabel 'seconds'\n"
                  f"plot {plots_rss}\nunset multiplot\n")
        subprocess.run([gp], input=script, text=True, cwd=outdir, capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--rate", type=float, default=20000)
    ap.add_argument("--disconnect", type=float, default=0.01)
    ap.add_argument("--rss-tolerance", type=float, default=0.05)
    ap.add_argument("--settle", type=float, default=3.0, help="seconds between the last close and the end sample")
    ap.add_argument("--models", default="goroutine,reactor,hybrid")
    ap.add_argument("--out", default=os.path.join(REPO, "results"))
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    outdir = os.path.join(a.out, "soak-" + time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)

    def progress(msg: str) -> None:
        sys.stderr.write("\r" + msg.ljust(78))
        sys.stderr.flush()

    results = []
    for m in a.models.split(","):
        try:
            results.append(soak_one(a.bin, m, a, progress))
        except Exception as e:  # a server that fails to start is a failure, the others still run
            results.append({"model": m, "pass": False, "error": str(e), "samples": []})
    sys.stderr.write("\n")
    with open(os.path.join(outdir, "soak.json"), "w") as f:
        json.dump({"args": vars(a), "results": results}, f, indent=1)
    chart(outdir, [r for r in results if r["samples"]])
    print(f"soak: {a.conns} connections, {a.seconds:g} s, ~{a.rate:g} req/s, reconnect p={a.disconnect}; {outdir}")
    print("| model | requests ok | bad | errors | reconnects | fds base/end | RSS MiB base/steady/end/peak | pass |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['model']} | error: {r['error']} | | | | | | no |")
            continue
        c = r["client"]
        print(f"| {r['model']} | {c.get('ok', 0):,} | {c.get('bad', '?')} | {c.get('errors', '?')} | "
              f"{c.get('reconnects', 0):,} | {r['baseline_fds']}/{r['end_fds']} | "
              f"{r['baseline_rss_kb'] / 1024:.1f}/{r['steady_rss_kb'] / 1024:.1f}/{r['end_rss_kb'] / 1024:.1f}/"
              f"{r['peak_rss_kb'] / 1024:.1f} | {'yes' if r['pass'] else 'NO: ' + ', '.join(k for k, v in r['checks'].items() if not v)} |")
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
