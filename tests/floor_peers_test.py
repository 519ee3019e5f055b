#!/usr/bin/env python3
"""The floor peers (bench/peers/floor) answer as the showdown assumes: for every request a read
completes, one 128-byte response, byte for byte mpg's GET /plaintext shape; requests split
across writes and pipelined ones included; the same bytes from the epoll floor and the io_uring
one.

Usage: floor_peers_test.py BINARY [BINARY ...]   (each prints "listening <port>")
"""
import re
import socket
import subprocess
import sys
import time

REQ = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"
RESPONSE = re.compile(rb"HTTP/1\.1 200 OK\r\nServer: mpg\r\nDate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} "
                      rb"\d\d:\d\d:\d\d GMT\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")


def read_responses(s: socket.socket, n: int) -> bytes:
    want = 128 * n
    got = b""
    deadline = time.monotonic() + 5
    while len(got) < want and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def check(binary: str) -> list[str]:
    errors = []
    p = subprocess.Popen([binary, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(p.stdout.readline().split()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            cases = [(REQ, 1), (REQ * 100, 100)]
            for data, n in cases:
                s.sendall(data)
                got = read_responses(s, n)
                if len(got) != 128 * n or len(RESPONSE.findall(got)) != n:
                    errors.append(f"{binary}: {n} request(s) in one write: {len(got)} bytes back")
            # A request whose terminator is split over two writes is answered once, when whole.
            s.sendall(REQ[:-3])
            time.sleep(0.05)
            s.sendall(REQ[-3:])
            got = read_responses(s, 1)
            if len(RESPONSE.findall(got)) != 1:
                errors.append(f"{binary}: split request: {got[:60]!r}")
            s.settimeout(0.2)
            try:
                extra = s.recv(1)
                if extra:
                    errors.append(f"{binary}: bytes after the last response")
            except socket.timeout:
                pass
    finally:
        p.terminate()
        if p.wait(timeout=5) != 0:
            errors.append(f"{binary}: exit status {p.returncode} on SIGTERM")
    return errors


def main() -> int:
    errors = [e for b in sys.argv[1:] for e in check(b)]
    for e in errors:
        print(e, file=sys.stderr)
    print(f"floor peers: {len(sys.argv) - 1} checked, {len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
