#!/usr/bin/env python3
"""mpg-httpd against real clients, curl and wrk, on every model (issue 6: "Against the real
clients too"). The C++ suites speak HTTP through hand-written requests; here the clients are the
ones users point at a server, with their own framing, connection reuse and Expect handling.

curl: a GET with the headers the core writes; three requests on one reused connection; HEAD;
HTTP/1.0; a 1 MiB POST /echo (curl decides on Expect: 100-continue itself) and the same body
with an explicit Expect: 100-continue (the interim 100 must come) and chunked (curl frames it);
PUT, GET, DELETE and a 404 on /kv/{key}.
wrk: one second of keep-alive load, plain and pipelined 16 deep (bench/http/pipeline.lua): some
requests done, no socket error, no non-2xx response. A correctness check with a bounded run,
not a benchmark: nothing here is timed.

    python3 tests/clients_test.py build/bin/mpg-httpd
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from httpd_proc import EachModel, start_httpd

BIN = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join("build", "bin", "mpg-httpd")
PIPELINE_LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "http", "pipeline.lua")
MODELS = ("goroutine", "reactor", "hybrid")


def run(cmd, timeout=60):
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


class Server:
    def __init__(self, model: str):
        self.p, port = start_httpd(BIN, model)
        self.url = "http://127.0.0.1:%d" % port

    def stop(self) -> str:
        """SIGTERM, wait for the exit; returns what the server wrote to stderr."""
        self.p.terminate()
        try:
            _, err = self.p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.communicate()
            raise
        return err


class RealClients(EachModel, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("curl", "wrk"):
            if not shutil.which(tool):
                raise RuntimeError(f"{tool} is missing: scripts/setup.sh installs it")
        cls.tmp = tempfile.mkdtemp(prefix="mpg-clients-")
        cls.big = os.path.join(cls.tmp, "big.bin")
        with open(cls.big, "wb") as f:
            f.write(bytes((i * 7 + (i >> 8)) & 0xFF for i in range(1 << 20)))
        with open(cls.big, "rb") as f:
            cls.big_bytes = f.read()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def curl(self, *args, ok=True):
        r = run(["curl", "-sS", "--max-time", "20", *args])
        if ok:
            self.assertEqual(r.returncode, 0, f"curl {args}: {r.stderr.decode(errors='replace')}")
        return r

    def check_curl(self, url: str):
        # GET, with the headers every server writes the same way.
        r = self.curl("-i", url + "/plaintext")
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        lines = head.decode("latin1").split("\r\n")
        self.assertEqual(lines[0], "HTTP/1.1 200 OK")
        fields = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        self.assertEqual(body, b"Hello, World!")
        self.assertEqual(fields.get("content-length"), "13")
        self.assertTrue(fields.get("content-type", "").startswith("text/plain"))
        self.assertRegex(fields.get("date", ""), r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$")
        self.assertIn("server", fields)

        # Three requests, one connection (curl reuses it only if the server kept it alive).
        r = self.curl("-v", url + "/plaintext", url + "/json", url + "/plaintext")
        self.assertEqual(r.stdout, b'Hello, World!{"message":"Hello, World!"}Hello, World!')
        self.assertEqual(r.stderr.count(b"Connected to"), 1, r.stderr.decode(errors="replace"))

        # HEAD: the GET's headers, no body (curl would wait for 13 bytes if one were promised
        # and not sent, and fail on --max-time; with -I it reads none).
        r = self.curl("-I", url + "/plaintext")
        self.assertTrue(r.stdout.startswith(b"HTTP/1.1 200 OK\r\n"), r.stdout)
        self.assertIn(b"Content-Length: 13\r\n", r.stdout)

        # HTTP/1.0.
        r = self.curl("-0", "-i", url + "/plaintext")
        self.assertTrue(r.stdout.startswith(b"HTTP/1.1 200 OK\r\n"), r.stdout[:40])
        self.assertTrue(r.stdout.endswith(b"\r\n\r\nHello, World!"))

        # 1 MiB bodies: as curl sends them, with an explicit Expect: 100-continue, and chunked.
        r = self.curl("--data-binary", "@" + self.big, "-H", "Content-Type: application/octet-stream", url + "/echo")
        self.assertEqual(r.stdout, self.big_bytes)
        r = self.curl("-v", "--expect100-timeout", "10", "-H", "Expect: 100-continue", "--data-binary",
                      "@" + self.big, url + "/echo")
        self.assertEqual(r.stdout, self.big_bytes)
        self.assertIn(b"HTTP/1.1 100 Continue", r.stderr)
        r = self.curl("-H", "Transfer-Encoding: chunked", "--data-binary", "@" + self.big, url + "/echo")
        self.assertEqual(r.stdout, self.big_bytes)

        # The key-value model.
        code = lambda *a: self.curl("-o", "/dev/null", "-w", "%{http_code}", *a).stdout
        self.assertEqual(code("-X", "PUT", "--data-binary", "v1", url + "/kv/alpha"), b"204")
        self.assertEqual(self.curl(url + "/kv/alpha").stdout, b"v1")
        self.assertEqual(code("-X", "DELETE", url + "/kv/alpha"), b"204")
        self.assertEqual(code(url + "/kv/alpha"), b"404")
        self.assertEqual(code(url + "/nowhere"), b"404")

    def check_wrk(self, url: str, pipelined: bool):
        cmd = ["wrk", "-t1", "-c50", "-d1s", "--timeout", "5s"]
        if pipelined:
            cmd += ["-s", PIPELINE_LUA, url + "/plaintext", "--", "16"]
        else:
            cmd += [url + "/plaintext"]
        r = run(cmd, timeout=60)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out + r.stderr.decode(errors="replace"))
        m = re.search(r"(\d+) requests in", out)
        self.assertIsNotNone(m, out)
        self.assertGreater(int(m.group(1)), 100, out)
        self.assertNotIn("Socket errors", out)
        self.assertNotIn("Non-2xx", out)

    def run_model(self, model: str):
        s = Server(model)
        err = ""
        try:
            self.check_curl(s.url)
            self.check_wrk(s.url, pipelined=False)
            self.check_wrk(s.url, pipelined=True)
        finally:
            err = s.stop()
        self.assertEqual(s.p.returncode, 0, err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
