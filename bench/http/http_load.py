#!/usr/bin/env python3
"""HTTP load harness of mpg's showdown (issue 7): wrk against every server, one at a time.

Servers (SERVERS below; a server whose binary is missing shows as n/a): the floor (floor_httpd,
the least work per request; floor-uring, the same on io_uring), nginx with 1 and 2 workers (config generated into a temp dir),
Go's net/http (go_nethttp), a raw Go goroutine-per-connection server (go_rawhttp), and
mpg-httpd on each model. Every one answers GET /plaintext with the same 128-byte response
(nginx's is 154 bytes: "Server: nginx" and its "Connection: keep-alive"); see
docs/showdown-harness.md.

For each repetition, each (connection count, mode) and each server, in an order rotated per
repetition (A B C, B C A, ...): starts the server afresh, runs wrk for --warmup seconds, then
the measured wrk run (keep-alive; mode "plain" is one request per write, "pipelined" sends
--depth requests per write with pipeline.lua), and records req/s, latency p50/p99/p99.9 (wrk's
histogram through report.lua's done() hook), wrk's errors, the server's CPU time per request
(utime+stime of the server's processes from /proc/<pid>/stat across the measured run, divided
by the requests of that run), its RSS (the largest sum of VmRSS over its processes sampled
during the run) and peak RSS (sum of VmHWM at the end), and anything the server logged.
Idle-connection memory: for each level of --idle, a fresh server, one primed request, its RSS,
then idle_client holds that many served keep-alive connections and the RSS is read again while
they are held: (held - before) / connections is the user-space memory per idle connection.

Pipelined latency: wrk's coordinated-omission correction puts entries below the histogram's
minimum when several responses arrive per timed batch, so its percentiles are wrong in that
mode; they are not reported (null) and the mean batch latency by Little's law is given instead.

Usage:
    python3 bench/http/http_load.py [--bin build/bin] [--quick] [--reps 3] [--seconds 3]
        [--warmup 1] [--conns 100,1000,10000] [--modes plain,pipelined] [--depth 16]
        [--idle 1000,10000] [--idle-max] [--servers floor,nginx-1,...]
        [--server 'name=/path/to/bin --flag ...'] [--json out.json]
Build first: cmake --build build -j2 --target floor_httpd idle_client go_nethttp go_rawhttp (and
floor_uring_httpd, which exists when liburing is installed)
Exit status 1 if a run failed or had errors, else 0 (a report, not a test).

As a module: SERVERS (add one with add_server), Options, run_load, run_idle, run_all,
summarize, print_tables, and the parsers parse_wrk, parse_proc_stat, parse_status_kb.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CLK_TCK = os.sysconf("SC_CLK_TCK")
WRK = "/usr/bin/wrk"
NGINX = "/usr/sbin/nginx"
MODES = ("plain", "pipelined")
# FD_MARGIN: descriptors a process needs besides its connections (listeners, epoll, logs, std).
FD_MARGIN = 64
# IDLE_MAX: the --idle-max level. Under the 20,000-file cap, and under 15/16 of nginx's
# worker_connections 20000: past 18,750 busy connections an nginx worker closes idle keep-alive
# ones (32 at a time) to free connection slots, so nginx-1 cannot hold 19,000.
IDLE_MAX = 18500


# --------------------------------------------------------------------------------------------
# /proc and wrk output (pure functions of the text, so they can be tested on recorded samples)

def parse_proc_stat(text: str) -> float:
    """CPU seconds (utime + stime) from the text of /proc/<pid>/stat."""
    fields = text.rsplit(")", 1)[1].split()
    # After the command name: state is fields[0]; utime, stime are fields 14, 15 of stat(5).
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def parse_status_kb(text: str, key: str) -> int:
    """A "Key:   123 kB" field of /proc/<pid>/status, in KiB (0 if absent)."""
    m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else 0


def parse_wrk(stdout: str) -> dict:
    """wrk's output with report.lua's WRK_JSON line: requests, req/s, errors, latency (µs)."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise ValueError("no WRK_JSON line in wrk's output (is report.lua's done() hook run?)")
    j = json.loads(line[len("WRK_JSON "):])
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", stdout)
    errors = dict(j["errors"], non_2xx=int(m.group(1)) if m else 0)
    lat = j["latency_us"]
    # A percentile of 0, or below the one before it, means wrk's histogram was corrupted (see
    # the module's doc string): no percentiles then.
    pcts = [lat["p50"], lat["p99"], lat["p99_9"]]
    valid = all(p > 0 for p in pcts) and pcts == sorted(pcts)
    return {
        "requests": j["requests"],
        "duration_s": j["duration_us"] / 1e6,
        "rps": j["requests"] / (j["duration_us"] / 1e6) if j["duration_us"] else 0.0,
        "bytes_per_response": j["bytes"] / j["requests"] if j["requests"] else None,
        "errors": errors,
        "errors_total": sum(errors.values()),
        "p50_us": lat["p50"] if valid else None,
        "p99_us": lat["p99"] if valid else None,
        "p99_9_us": lat["p99_9"] if valid else None,
        "latency_raw_us": lat,
    }


def read_proc(pid: int, name: str) -> str | None:
    return read_proc_file(f"/proc/{pid}/{name}")


def process_tree(root: int) -> list[int]:
    """root and its descendants (nginx's workers), from every /proc/<pid>/stat's ppid."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        text = read_proc(int(d), "stat")
        if text:
            ppid = int(text.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(d))
    tree, todo = [], [root]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def tree_cpu_seconds(pids: list[int]) -> float:
    return sum(parse_proc_stat(t) for t in (read_proc(p, "stat") for p in pids) if t)


def tree_status_kb(pids: list[int], key: str) -> int:
    return sum(parse_status_kb(t, key) for t in (read_proc(p, "status") for p in pids) if t)


def parse_cpu_busy(proc_stat: str) -> float:
    """Seconds every CPU spent busy (not idle, not iowait), from the text of /proc/stat."""
    f = [int(x) for x in proc_stat.splitlines()[0].split()[1:9]]
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / CLK_TCK


def machine_busy_seconds() -> float:
    return parse_cpu_busy(read_proc_file("/proc/stat") or "cpu 0 0 0 0 0 0 0 0")


def read_proc_file(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def wait_quiet(max_wait: float, cores: float = 0.15) -> float:
    """Waits (at most max_wait s) until the machine's other work uses under `cores` cores over
    half a second; returns the last figure seen (cores busy)."""
    end = time.monotonic() + max_wait
    while True:
        b0, t0 = machine_busy_seconds(), time.monotonic()
        time.sleep(0.5)
        busy = (machine_busy_seconds() - b0) / (time.monotonic() - t0)
        if busy < cores or time.monotonic() >= end:
            return busy


def children_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def raise_fd_limit() -> int:
    """Raises this process's soft RLIMIT_NOFILE to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# Servers

class Running:
    """A started server: its port, its processes, what it logged; stop() ends it."""

    def __init__(self, proc: subprocess.Popen, port: int, workdir: str, log_files: list[str],
                 error_filter: Callable[[str], bool]):
        self.proc, self.port, self.workdir = proc, port, workdir
        self.log_files, self.error_filter = log_files, error_filter

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def logged_errors(self) -> list[str]:
        lines = []
        for path in self.log_files:
            try:
                with open(path, errors="replace") as f:
                    lines += [ln.rstrip() for ln in f if ln.strip() and self.error_filter(ln)]
            except OSError:
                pass
        return lines

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_listening(proc: subprocess.Popen, out_path: str, timeout: float = 10) -> int:
    """The port from the server's "listening <port>" line (its stdout goes to out_path)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(out_path) as f:
            for line in f:
                if line.startswith("listening "):
                    return int(line.split()[1])
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before listening")
        time.sleep(0.01)
    raise RuntimeError("no 'listening <port>' line")


@dataclasses.dataclass
class ArgvServer:
    """A server started as argv (argv[0] relative to the bin folder unless absolute) that
    prints "listening <port>" on stdout; it must listen on 127.0.0.1 on the port it chooses."""
    name: str
    argv: list[str]

    def binary(self, bin_dir: str) -> str:
        return self.argv[0] if os.path.isabs(self.argv[0]) else os.path.join(bin_dir, self.argv[0])

    def available(self, bin_dir: str) -> bool:
        return os.access(self.binary(bin_dir), os.X_OK)

    def start(self, bin_dir: str, workdir: str) -> Running:
        out, err = os.path.join(workdir, "stdout"), os.path.join(workdir, "stderr")
        with open(out, "w") as o, open(err, "w") as e:
            proc = subprocess.Popen([self.binary(bin_dir)] + self.argv[1:], stdout=o, stderr=e,
                                    stdin=subprocess.DEVNULL)
        try:
            port = wait_listening(proc, out)
        except RuntimeError as ex:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{self.name}: {ex}: {open(err).read().strip()[:500]}") from None
        return Running(proc, port, workdir, [err], lambda line: True)


NGINX_CONF = """\
# Generated by bench/http/http_load.py for one run; nothing here touches the system's nginx.
worker_processes {workers};
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 20000;
}}
http {{
    access_log off;
    server_tokens off;
    keepalive_requests 1000000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location /plaintext {{
            default_type text/plain;
            return 200 "Hello, World!";
        }}
    }}
}}
"""


def write_nginx_conf(workdir: str, workers: int, port: int) -> str:
    """Writes nginx.conf for `workers` worker processes on 127.0.0.1:port into workdir."""
    path = os.path.join(workdir, "nginx.conf")
    with open(path, "w") as f:
        f.write(NGINX_CONF.format(workers=workers, dir=workdir, port=port))
    return path


@dataclasses.dataclass
class NginxServer:
    """nginx with `workers` worker processes, its config and logs in the run's temp dir."""
    name: str
    workers: int
    binary_path: str = NGINX

    def available(self, bin_dir: str) -> bool:
        return os.access(self.binary_path, os.X_OK)

    def start(self, bin_dir: str, workdir: str) -> Running:
        port = free_port()
        conf = write_nginx_conf(workdir, self.workers, port)
        err = os.path.join(workdir, "stderr")
        with open(err, "w") as e:
            proc = subprocess.Popen([self.binary_path, "-c", conf, "-p", workdir + "/"],
                                    stdout=e, stderr=e, stdin=subprocess.DEVNULL)
        run = Running(proc, port, workdir, [err, os.path.join(workdir, "error.log")],
                      lambda line: re.search(r"\[(error|crit|alert|emerg)\]", line) is not None)
        end = time.monotonic() + 10
        while time.monotonic() < end:  # up once it accepts and every worker exists
            if proc.poll() is not None:
                raise RuntimeError(f"{self.name}: nginx exited: {open(err).read().strip()[:500]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                if len(run.pids()) == self.workers + 1:
                    return run
            except OSError:
                pass
            time.sleep(0.02)
        run.stop()
        raise RuntimeError(f"{self.name}: nginx did not come up on port {port}")


# SERVERS: name -> spec, in table order. One line adds a server (or call add_server).
SERVERS: dict[str, ArgvServer | NginxServer] = {s.name: s for s in [
    ArgvServer("floor", ["floor_httpd", "--host", "127.0.0.1", "--port", "0"]),
    ArgvServer("floor-uring", ["floor_uring_httpd", "--host", "127.0.0.1", "--port", "0"]),
    NginxServer("nginx-1", workers=1),
    NginxServer("nginx-2", workers=2),
    ArgvServer("go-nethttp", ["go_nethttp", "-host", "127.0.0.1", "-port", "0"]),
    ArgvServer("go-raw", ["go_rawhttp", "-host", "127.0.0.1", "-port", "0"]),
    ArgvServer("mpg-goroutine", ["mpg-httpd", "--model", "goroutine", "--listen", "127.0.0.1:0"]),
    ArgvServer("mpg-reactor", ["mpg-httpd", "--model", "reactor", "--listen", "127.0.0.1:0"]),
    ArgvServer("mpg-hybrid", ["mpg-httpd", "--model", "hybrid", "--listen", "127.0.0.1:0"]),
]}


def add_server(name: str, argv: list[str]) -> None:
    """Adds (or replaces) a server started as argv that prints "listening <port>"."""
    SERVERS[name] = ArgvServer(name, argv)


# --------------------------------------------------------------------------------------------
# Runs

@dataclasses.dataclass
class Options:
    bin_dir: str = os.path.join(REPO, "build", "bin")
    reps: int = 3
    seconds: float = 3.0
    warmup: float = 1.0
    # A measured run lasts at least this many seconds per 1,000 connections: wrk opens them all
    # inside the run (10,000 take about a second here), so short runs at 10,000 measure mostly that.
    seconds_per_1k: float = 0.5
    quiet_wait: float = 0.0  # before each run, wait up to this long for the machine to be idle
    conns: tuple[int, ...] = (100, 1000, 10000)
    modes: tuple[str, ...] = MODES
    depth: int = 16
    wrk_threads: int = 1
    wrk_timeout: float = 5.0
    idle: tuple[int, ...] = (1000, 10000)
    hold: float = 1.0
    settle: float = 0.3  # seconds between "all held" and reading the server's RSS
    fd_limit: int = 0    # set by run_all (raise_fd_limit)


def wrk_argv(port: int, conns: int, seconds: float, mode: str, o: Options) -> list[str]:
    """wrk's command line; -d is rounded up (wrk takes whole seconds): run_wrk stops it in time."""
    script = os.path.join(HERE, "pipeline.lua" if mode == "pipelined" else "report.lua")
    argv = [WRK, f"-t{min(o.wrk_threads, conns)}", f"-c{conns}", f"-d{math.ceil(seconds) + 1}s",
            f"--timeout={o.wrk_timeout:g}s", "--latency", "-s", script,
            f"http://127.0.0.1:{port}/plaintext"]
    return argv + (["--", str(o.depth)] if mode == "pipelined" else [])


def run_wrk(argv: list[str], seconds: float, pids: list[int] | None = None) -> tuple[str, int]:
    """Runs wrk for `seconds` (then SIGINT: wrk stops and reports the time it ran); while it
    runs, samples the RSS of the processes `pids` every 0.2 s. Returns wrk's stdout and the
    largest RSS sum seen (KiB)."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rss = 0
    stop_at = time.monotonic() + seconds
    while p.poll() is None and time.monotonic() < stop_at:
        if pids:
            rss = max(rss, tree_status_kb(pids, "VmRSS"))
        time.sleep(min(0.2, max(0.0, stop_at - time.monotonic())))
    p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise RuntimeError("wrk did not stop in time") from None
    if p.returncode != 0:
        raise RuntimeError(f"wrk failed ({p.returncode}): {err.strip()[:500]}")
    return out, rss


def with_server(spec, o: Options, body: Callable[[Running], dict]) -> dict:
    """Starts spec in a fresh temp dir, runs body(running), stops it; adds what it logged."""
    workdir = tempfile.mkdtemp(prefix=f"http_load_{spec.name}_")
    try:
        running = spec.start(o.bin_dir, workdir)
        try:
            r = body(running)
        finally:
            running.stop()
        r["server_errors"] = running.logged_errors()[:20]
        return r
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def check_fds(conns: int, o: Options) -> None:
    if conns + FD_MARGIN > o.fd_limit:
        raise RuntimeError(f"{conns} connections need more than the {o.fd_limit} open files "
                           "a process may have here")


def run_load(spec, conns: int, mode: str, o: Options) -> dict:
    """One wrk run (warm-up first) against a fresh instance of spec."""
    check_fds(conns, o)

    def body(running: Running) -> dict:
        if o.warmup > 0:
            run_wrk(wrk_argv(running.port, conns, o.warmup, mode, o), o.warmup)
        seconds = max(o.seconds, o.seconds_per_1k * conns / 1000)
        idle_before = wait_quiet(o.quiet_wait) if o.quiet_wait > 0 else None
        pids = running.pids()
        cpu0, wrk0, busy0 = tree_cpu_seconds(pids), children_cpu_seconds(), machine_busy_seconds()
        t0 = time.monotonic()
        out, rss = run_wrk(wrk_argv(running.port, conns, seconds, mode, o), seconds, pids)
        busy1, wrk1, wall = machine_busy_seconds(), children_cpu_seconds(), time.monotonic() - t0
        pids = running.pids()
        cpu1 = tree_cpu_seconds(pids)
        r = parse_wrk(out)
        server_cpu, wrk_cpu = cpu1 - cpu0, wrk1 - wrk0
        r.update(server=spec.name, conns=conns, mode=mode,
                 depth=o.depth if mode == "pipelined" else 1,
                 cpu_us_per_req=server_cpu * 1e6 / r["requests"] if r["requests"] else None,
                 # cores used while wrk ran (its start and stop included): the server, wrk, and
                 # the rest of the machine (other users, this driver)
                 server_cpu_cores=server_cpu / wall, wrk_cpu_cores=wrk_cpu / wall,
                 other_cpu_cores=max(0.0, busy1 - busy0 - server_cpu - wrk_cpu) / wall,
                 idle_before_cores=idle_before,
                 rss_kb=max(rss, tree_status_kb(pids, "VmRSS")), hwm_kb=tree_status_kb(pids, "VmHWM"),
                 processes=len(pids), wrk_output=out)
        if r["requests"] == 0:
            raise RuntimeError(f"wrk completed no request in {r['duration_s']:.1f} s")
        if mode == "pipelined":
            # wrk's percentiles are wrong here even when they look sane (module doc string);
            # Little's law instead: every connection always has one batch of `depth` in flight.
            r.update(p50_us=None, p99_us=None, p99_9_us=None)
            r["batch_mean_us"] = conns * o.depth / r["rps"] * 1e6
        return r

    return with_server(spec, o, body)


def idle_client(port: int, conns: int, hold: float, o: Options,
                on_held: Callable[[dict], None] | None = None) -> dict:
    """Runs idle_client; calls on_held(first JSON line) while the connections are held."""
    argv = [os.path.join(o.bin_dir, "idle_client"), "--port", str(port), "--conns", str(conns),
            "--hold", f"{hold:g}", "--timeout", "60"]
    with tempfile.TemporaryFile("w+") as err_file:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err_file, text=True)
        # idle_client ends by itself (--timeout and --hold bound it); the timer is a safety net.
        watchdog = threading.Timer(hold + 90, p.kill)
        watchdog.start()
        try:
            first = p.stdout.readline()
            held = json.loads(first) if first.startswith("{") else {}
            if on_held and held.get("opened"):
                on_held(held)
            out = first + p.stdout.read()  # the rest, through the same buffered reader
            p.stdout.close()
            p.wait()
        finally:
            watchdog.cancel()
        err_file.seek(0)
        err = err_file.read()
    lines = out.strip().splitlines()
    if len(lines) < 2:
        raise RuntimeError(f"idle_client failed (status {p.returncode}): {err.strip()[:500]}")
    r = json.loads(lines[-1])
    r["client_ok"] = p.returncode == 0
    if err.strip():
        r["client_stderr"] = err.strip()[:500]
    return r


def run_idle(spec, conns: int, o: Options) -> dict:
    """RSS per idle keep-alive connection: a fresh server, primed with one request; its RSS
    before, then while idle_client holds `conns` served connections."""
    check_fds(conns, o)

    def body(running: Running) -> dict:
        idle_client(running.port, 1, 0, o)  # first request: lazy initialization done
        time.sleep(0.2)
        before = tree_status_kb(running.pids(), "VmRSS")
        held_kb: list[int] = []

        def sample(_held: dict) -> None:
            time.sleep(o.settle)
            for _ in range(3):
                held_kb.append(tree_status_kb(running.pids(), "VmRSS"))
                time.sleep(0.05)

        r = idle_client(running.port, conns, max(o.hold, o.settle + 0.5), o, sample)
        held = max(held_kb) if held_kb else None
        r.update(server=spec.name, idle=conns, rss_before_kb=before, rss_held_kb=held,
                 hwm_kb=tree_status_kb(running.pids(), "VmHWM"),
                 bytes_per_conn=(held - before) * 1024 / r["opened"] if held and r["opened"] else None)
        return r

    return with_server(spec, o, body)


def run_all(names: list[str], o: Options, progress: Callable[[str], None] | None = None) -> dict:
    """Every load and idle run for the servers `names` (missing ones are listed as n/a).
    Returns {"options", "available", "missing", "runs", "idle", "failures"}."""
    o.fd_limit = raise_fd_limit()
    avail = [n for n in names if SERVERS[n].available(o.bin_dir)]
    have_idle_client = os.access(os.path.join(o.bin_dir, "idle_client"), os.X_OK)
    jobs: list[tuple[str, str, int, str]] = []
    for rep in range(o.reps):
        order = avail[rep % len(avail):] + avail[:rep % len(avail)] if avail else []
        for conns in o.conns:
            for mode in o.modes:
                jobs += [("load", s, conns, mode) for s in order]
        if have_idle_client:
            for level in o.idle:
                jobs += [("idle", s, level, "") for s in order]
    res: dict = {"options": dataclasses.asdict(o), "available": avail,
                 "missing": [n for n in names if n not in avail], "runs": [], "idle": [],
                 "failures": []}
    if not have_idle_client and o.idle:
        res["failures"].append(f"{o.bin_dir}/idle_client not found: no idle-connection figures")
    t0 = time.monotonic()
    for k, (kind, s, n, mode) in enumerate(jobs):
        if progress:
            done = time.monotonic() - t0
            left = done / k * (len(jobs) - k) if k else 0
            progress(f"[{k + 1}/{len(jobs)}] {kind} {s} {n} {mode} ({done:.0f} s, ~{left:.0f} s left)")
        try:
            if kind == "load":
                res["runs"].append(run_load(SERVERS[s], n, mode, o))
            else:
                res["idle"].append(run_idle(SERVERS[s], n, o))
        except Exception as e:  # a failed run is reported, the others still run
            res["failures"].append(f"{kind} {s} {n} {mode}: {e}")
    res["seconds"] = time.monotonic() - t0
    return res


# --------------------------------------------------------------------------------------------
# Summary and tables

def spread(values: list[float]) -> dict | None:
    v = [x for x in values if x is not None]
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)} if v else None


LOAD_METRICS = ["rps", "p50_us", "p99_us", "p99_9_us", "batch_mean_us", "cpu_us_per_req",
                "rss_kb", "hwm_kb", "errors_total", "bytes_per_response", "server_cpu_cores",
                "wrk_cpu_cores", "other_cpu_cores"]


def summarize(res: dict) -> dict:
    """Medians with min-max: load[(server, conns, mode)][metric], idle[(server, level)]."""
    load: dict = {}
    for r in res["runs"]:
        load.setdefault((r["server"], r["conns"], r["mode"]), []).append(r)
    idle: dict = {}
    for r in res["idle"]:
        idle.setdefault((r["server"], r["idle"]), []).append(r)
    out = {"load": {}, "idle": {}}
    for key, rs in load.items():
        out["load"][key] = {m: spread([r.get(m) for r in rs]) for m in LOAD_METRICS}
        out["load"][key]["server_errors"] = sum(len(r["server_errors"]) for r in rs)
    for key, rs in idle.items():
        out["idle"][key] = {m: spread([r.get(m) for r in rs])
                            for m in ("bytes_per_conn", "rss_before_kb", "rss_held_kb", "opened")}
        out["idle"][key]["failed"] = sum(not r["client_ok"] or r["opened"] != r["idle"] for r in rs)
    return out


def fmt(s: dict | None, scale: float = 1.0, digits: int = 0, with_range: bool = True) -> str:
    if s is None:
        return "n/a"
    f = f"{{:,.{digits}f}}"
    text = f.format(s["median"] * scale)
    if with_range and s["n"] > 1:
        text += f" ({f.format(s['min'] * scale)}-{f.format(s['max'] * scale)})"
    return text


def print_tables(res: dict, names: list[str], o: Options, out=sys.stdout) -> None:
    summ = summarize(res)
    rows = []
    for conns in o.conns:
        for mode in o.modes:
            floor = summ["load"].get(("floor", conns, mode), {}).get("cpu_us_per_req")
            for s in names:
                m = summ["load"].get((s, conns, mode))
                if m is None:
                    rows.append([s, f"{conns:,}", mode] + ["n/a"] * 10)
                    continue
                ratio = (f"{m['cpu_us_per_req']['median'] / floor['median']:.2f}"
                         if floor and m["cpu_us_per_req"] else "n/a")
                lat = ([fmt(m["p50_us"], 1e-3, 2), fmt(m["p99_us"], 1e-3, 2), fmt(m["p99_9_us"], 1e-3, 2)]
                       if mode == "plain" else [f"~{fmt(m['batch_mean_us'], 1e-3, 2, False)} mean", "-", "-"])
                errors = int(m["errors_total"]["max"]) if m["errors_total"] else 0
                cores = "/".join(fmt(m[k], 1, 1, False) for k in ("server_cpu_cores", "wrk_cpu_cores", "other_cpu_cores"))
                rows.append([s, f"{conns:,}", mode, fmt(m["rps"]), *lat, fmt(m["cpu_us_per_req"], 1, 2),
                             ratio, cores, fmt(m["rss_kb"], 1 / 1024, 1, False), fmt(m["hwm_kb"], 1 / 1024, 1, False),
                             f"{errors}" + (f" +{m['server_errors']} logged" if m["server_errors"] else "")])
    head = ["server", "conns", "mode", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "CPU us/req", "x floor",
            "cores s/w/o", "RSS MB", "peak MB", "errors"]
    print(f"HTTP plaintext under wrk (-t{o.wrk_threads}, keep-alive; pipelined {o.depth} deep), "
          f"{o.reps} rep(s) x {o.seconds:g} s (+{o.warmup:g} s warm-up), medians (min-max); "
          f"{res.get('seconds', 0):.0f} s", file=out)
    print_table(head, rows, out)
    print("cores s/w/o: CPU cores used by the server, by wrk and by everything else on the machine "
          "during the run; pipelined latency: mean per batch by Little's law", file=out)
    if res["idle"] or o.idle:
        irows = []
        for level in o.idle:
            for s in names:
                m = summ["idle"].get((s, level))
                if m is None:
                    irows.append([s, f"{level:,}", "n/a", "n/a", "n/a", "n/a"])
                    continue
                irows.append([s, f"{level:,}", fmt(m["opened"], 1, 0, False),
                              fmt(m["rss_before_kb"], 1 / 1024, 1, False), fmt(m["rss_held_kb"], 1 / 1024, 1, False),
                              fmt(m["bytes_per_conn"], 1, 0) + (" FAILED" if m["failed"] else "")])
        print(f"\nIdle keep-alive connections (each served one request), server RSS (sum over its processes)",
              file=out)
        print_table(["server", "idle conns", "opened", "RSS before MB", "RSS held MB", "bytes/conn"], irows, out)
    for f in res["failures"]:
        print(f"FAILED: {f}", file=out)


def print_table(head: list[str], rows: list[list[str]], out) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).rjust(w) for c, w in zip(cells, widths)) + " |"
    print(line(head), file=out)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
    for r in rows:
        print(line(r), file=out)


def bad_runs(res: dict) -> list[str]:
    """Runs that must not be trusted: wrk or the server saw errors, idle connections failed."""
    bad = [f"{r['server']} {r['conns']} {r['mode']}: {r['errors']} {r['server_errors'][:3]}"
           for r in res["runs"] if r["errors_total"] or r["server_errors"]]
    bad += [f"idle {r['server']} {r['idle']}: opened {r['opened']}, served {r['served']}, "
            f"closed {r['closed_by_server']} {r['server_errors'][:3]}"
            for r in res["idle"] if not r["client_ok"] or r["server_errors"]]
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: tuple(int(x) for x in s.split(",") if x)
    ap.add_argument("--bin", default=Options.bin_dir)
    ap.add_argument("--quick", action="store_true",
                    help="one rep, 1 s runs (2 s at 10,000 connections), no warm-up: about a minute for the peers")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--warmup", type=float)
    ap.add_argument("--conns", type=ints, default=Options.conns)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--seconds-per-1k", type=float,
                    help="a run lasts at least this many seconds per 1,000 connections (default 0.5)")
    ap.add_argument("--quiet-wait", type=float, default=0.0,
                    help="before each measured run, wait up to this many seconds for the machine to be idle")
    ap.add_argument("--depth", type=int, default=Options.depth)
    ap.add_argument("--wrk-threads", type=int, default=Options.wrk_threads)
    ap.add_argument("--idle", type=ints, default=Options.idle, help="idle-connection levels ('' for none)")
    ap.add_argument("--idle-max", action="store_true",
                    help=f"also hold {IDLE_MAX:,} idle connections (the most every server here can hold)")
    ap.add_argument("--hold", type=float, help="seconds idle_client holds its connections")
    ap.add_argument("--servers", default=None, help="comma-separated names (default: all)")
    ap.add_argument("--server", action="append", default=[], metavar="NAME=ARGV",
                    help="add a server: NAME='binary args...' (prints 'listening <port>')")
    ap.add_argument("--json", help="write every run and the summary here")
    a = ap.parse_args()
    for spec in a.server:
        name, _, argv = spec.partition("=")
        add_server(name, shlex.split(argv))
    quick = a.quick
    o = Options(bin_dir=a.bin, conns=a.conns, modes=tuple(a.modes.split(",")), depth=a.depth,
                wrk_threads=a.wrk_threads, idle=a.idle,
                reps=a.reps or (1 if quick else Options.reps),
                seconds=a.seconds or (1.0 if quick else Options.seconds),
                warmup=a.warmup if a.warmup is not None else (0.0 if quick else Options.warmup),
                hold=a.hold or (0.5 if quick else Options.hold), quiet_wait=a.quiet_wait,
                seconds_per_1k=a.seconds_per_1k or (0.2 if quick else Options.seconds_per_1k))
    if a.idle_max:
        o.idle = tuple(sorted(set(o.idle) | {IDLE_MAX}))
    names = a.servers.split(",") if a.servers else list(SERVERS)
    unknown = [n for n in names if n not in SERVERS] + [m for m in o.modes if m not in MODES]
    if unknown:
        print(f"http_load: unknown server or mode: {', '.join(unknown)}", file=sys.stderr)
        return 2
    if not os.access(WRK, os.X_OK):
        print(f"http_load: {WRK} not found (apt-get install wrk)", file=sys.stderr)
        return 1
    res = run_all(names, o, lambda line: print(line, file=sys.stderr, flush=True))
    for n in res["missing"]:
        print(f"http_load: {n}: binary not found, n/a", file=sys.stderr)
    print_tables(res, names, o)
    bad = bad_runs(res)
    for b in bad:
        print(f"ERRORS: {b}")
    if a.json:
        summ = summarize(res)
        with open(a.json, "w") as f:
            json.dump({**res, "summary": {
                "load": {f"{s}/{c}/{m}": v for (s, c, m), v in summ["load"].items()},
                "idle": {f"{s}/{n}": v for (s, n), v in summ["idle"].items()}}}, f, indent=1)
    return 1 if res["failures"] or bad else 0


if __name__ == "__main__":
    sys.exit(main())
