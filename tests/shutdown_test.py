#!/usr/bin/env python3
"""Graceful shutdown of the mpg-httpd process under load, for each model: SIGTERM while clients
send keep-alive requests. Checks, on the client side: every response that arrives is whole and
correct (200, or the drain's 503); a request is either answered or its connection closes
without a byte of response (never a truncated one); new connections are refused afterwards;
the process exits 0 within its 5 s grace period plus a margin.

    python3 tests/shutdown_test.py build/bin/mpg-httpd
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

from httpd_proc import EachModel, start_httpd

BIN = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join("build", "bin", "mpg-httpd")
CLIENTS = 8
REQUEST = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s"


def read_response(s: socket.socket, buf: bytearray):
    """One whole response (status, body) from s, or None if the connection closed first. Raises
    ValueError on a truncated response (bytes, then EOF)."""
    while True:
        he = buf.find(b"\r\n\r\n")
        if he >= 0:
            head = bytes(buf[:he]).decode("latin1")
            n = 0
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.lower() == "content-length":
                    n = int(v)
            if len(buf) >= he + 4 + n:
                body = bytes(buf[he + 4:he + 4 + n])
                del buf[:he + 4 + n]
                return int(head[9:12]), body
        chunk = s.recv(65536)
        if not chunk:
            if buf:
                raise ValueError(f"truncated response: {bytes(buf[:80])!r}")
            return None
        buf += chunk


class Shutdown(EachModel, unittest.TestCase):
    def run_model(self, model: str):
        p, port = start_httpd(BIN, model)
        stop = threading.Event()
        stats = {"answered": 0, "drained": 0, "unanswered": 0, "bad": []}
        lock = threading.Lock()

        def client(i: int):
            seq = 0
            while not stop.is_set():
                try:
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                except OSError:
                    return  # refused: the server stopped listening
                buf = bytearray()
                try:
                    while not stop.is_set():
                        body = b"c%d-%d" % (i, seq)
                        seq += 1
                        s.sendall(REQUEST % (len(body), body))
                        r = read_response(s, buf)
                        with lock:
                            if r is None:
                                stats["unanswered"] += 1
                                break
                            status, got = r
                            if status == 200 and got == body:
                                stats["answered"] += 1
                            elif status == 503:
                                stats["drained"] += 1
                            else:
                                stats["bad"].append((status, got[:40]))
                except (ConnectionResetError, BrokenPipeError):
                    with lock:
                        stats["unanswered"] += 1
                except ValueError as e:
                    with lock:
                        stats["bad"].append(str(e))
                finally:
                    s.close()

        ts = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in ts:
            t.start()
        time.sleep(1.0)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        try:
            code = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            code = None
        took = time.monotonic() - t0
        p.stdout.close()
        p.stderr.close()
        refused = False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            refused = True
        stop.set()
        for t in ts:
            t.join(timeout=10)
        self.assertEqual(code, 0, f"{model}: exit code {code}")
        self.assertLess(took, 5.0 + 2.0, f"{model}: took {took:.1f} s to exit")
        self.assertEqual(stats["bad"], [], f"{model}: wrong or truncated responses")
        self.assertGreater(stats["answered"], 100, f"{model}: {stats}")
        self.assertTrue(refused, f"{model}: still accepting after exit")


if __name__ == "__main__":
    unittest.main()
