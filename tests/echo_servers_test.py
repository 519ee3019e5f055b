#!/usr/bin/env python3
"""The echo benchmark's servers echo every byte, in order, on every connection: echo_goroutine
with a buffer per connection and with --pool (buffers borrowed while a connection has data, so
one goroutine's echo must never carry another's bytes), and echo_reactor.

Cases, on 32 connections at once: random payloads from 1 byte to 6 MiB (beyond the 64 KiB read
buffer), written in random pieces; the echo is read back only after the first 0.3 s, so that
the servers' writes fill the sockets and wait, buffer in hand, while other connections read.
Then each connection half-closes and must see the server close after its last byte.

Usage: echo_servers_test.py ECHO_GOROUTINE ECHO_REACTOR
"""
import os
import random
import selectors
import socket
import subprocess
import sys
import time

from httpd_proc import start_listening, stop

CONNS = 32
DEADLINE_S = 15  # per case: 3 servers x 2 rounds stay under the CTest timeout (120 s)
HOLD_S = 0.3  # the client reads nothing before this


def run_case(port: int, rng: random.Random) -> list[str]:
    sel = selectors.DefaultSelector()
    conns = []
    for i in range(CONNS):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setblocking(False)
        size = rng.choice([1, 511, 512, 4096, 65535, 65537, 200 * 1024, 3 << 20]) if i % 2 else 6 << 20
        payload = os.urandom(size)
        conns.append({"s": s, "out": payload, "sent": 0, "got": bytearray(), "eof": False, "id": i})
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, conns[-1])
    start = time.monotonic()
    end = start + DEADLINE_S
    while time.monotonic() < end and not all(c["eof"] for c in conns):
        for key, ev in sel.select(timeout=0.5):
            c = key.data
            if ev & selectors.EVENT_WRITE and c["sent"] < len(c["out"]):
                piece = rng.randint(1, 70000)
                try:
                    c["sent"] += c["s"].send(c["out"][c["sent"]:c["sent"] + piece])
                except BlockingIOError:
                    pass
                except OSError as e:  # a reset: the server dropped the connection
                    c["eof"] = True
                    c["err"] = str(e)
                    sel.unregister(c["s"])
                    continue
                if c["sent"] == len(c["out"]):
                    c["s"].shutdown(socket.SHUT_WR)
                    sel.modify(c["s"], selectors.EVENT_READ, c)
            if ev & selectors.EVENT_READ and time.monotonic() - start >= HOLD_S:
                try:
                    chunk = c["s"].recv(1 << 16)
                except BlockingIOError:
                    continue
                except OSError as e:
                    c["eof"] = True
                    c["err"] = str(e)
                    sel.unregister(c["s"])
                    continue
                if chunk:
                    c["got"] += chunk
                else:
                    c["eof"] = True
                    sel.unregister(c["s"])
    errors = []
    for c in conns:
        if "err" in c:
            errors.append(f"connection {c['id']}: {c['err']} after {len(c['got'])} of {len(c['out'])} bytes")
        elif not c["eof"]:
            errors.append(f"connection {c['id']}: no close after {len(c['got'])} of {len(c['out'])} bytes")
        elif bytes(c["got"]) != c["out"]:
            errors.append(f"connection {c['id']}: echo differs ({len(c['got'])} bytes for {len(c['out'])})")
        c["s"].close()
    return errors


def check(argv: list[str], seed: int) -> list[str]:
    try:
        p, port = start_listening(argv, stderr=subprocess.DEVNULL, timeout=10)
    except RuntimeError as e:
        return [str(e)]
    try:
        errors = []
        for k in range(2):
            errors += [f"{' '.join(argv[1:]) or argv[0]} round {k}: {e}" for e in run_case(port, random.Random(seed + k))]
        return errors
    finally:
        stop(p)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    goroutine, reactor = sys.argv[1], sys.argv[2]
    servers = [
        [goroutine, "--port", "0", "--procs", "2"],
        [goroutine, "--port", "0", "--procs", "2", "--pool"],
        [reactor, "--port", "0", "--loops", "2"],
    ]
    errors = []
    for i, argv in enumerate(servers):
        errors += check(argv, 1000 * i)
    for e in errors:
        print("FAIL:", e)
    print("ok" if not errors else f"{len(errors)} failures")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
