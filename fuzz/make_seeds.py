#!/usr/bin/env python3
"""make_seeds.py: writes the seed corpora in fuzz/corpus/<target>/ (run from anywhere).

The seeds are committed; this script documents how each was made and regenerates them. Each
target's input layout is described at the top of its .cpp file.
"""
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"

# --- fuzz_http_session: 7 limit bytes, a flags byte, piece lengths, then the stream. ---------

DEFAULTS = bytes(7)
TINY = bytes([3, 3, 4, 3, 3, 0, 2])  # request line 40, header 32, 3 fields, body 5, chunk line 4


def http(limits: bytes, flags: int, pieces: list, stream: bytes) -> bytes:
    assert len(pieces) < 16
    return limits + bytes([flags | len(pieces) << 4]) + bytes(pieces) + stream


H = b"Host: a\r\n"
POST = b"POST /echo HTTP/1.1\r\n" + H
TE = b"Transfer-Encoding: chunked\r\n"
REQUESTS = {
    "plaintext": b"GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\nAccept: */*\r\n\r\n",
    "pipelined": b"GET /plaintext HTTP/1.1\r\n" + H + b"\r\n"
    + b"GET /kv/abc?x=1 HTTP/1.1\r\n" + H + b"\r\n"
    + b"HEAD /plaintext HTTP/1.1\r\n" + H + b"\r\n"
    + POST + b"Content-Length: 5\r\n\r\nhello",
    "chunked": b"PUT /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
    + b"5;name=value\r\nhello\r\n6 ; ext\r\n world\r\n0\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\n"
    + b"GET /plaintext HTTP/1.1\r\n" + H + b"\r\n",
    "continue": b"PUT /echo HTTP/1.1\r\n" + H
    + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "http10": b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    + b"GET /kv/z HTTP/1.0\r\n\r\n",
    "routes": b"GET /status/204 HTTP/1.1\r\n" + H + b"\r\n"
    + b"GET /status/304 HTTP/1.1\r\n" + H + b"\r\n"
    + b"GET /status/99 HTTP/1.1\r\n" + H + b"\r\n"
    + b"GET /throw HTTP/1.1\r\n" + H + b"\r\n"
    + b"GET /header/X-Name?value HTTP/1.1\r\n" + H + b"\r\n"
    + b"GET /header/Content-Length?1 HTTP/1.1\r\n" + H + b"\r\n"
    + b"OPTIONS /fields HTTP/1.1\r\n" + H + b"A:  spaced \r\nB:\r\n\r\n"
    + b"DELETE /plaintext HTTP/1.1\r\n" + H + b"\r\n"
    + b"GET /nothing HTTP/1.1\r\n" + H + b"\r\n"
    + b"GET /close HTTP/1.1\r\n" + H + b"\r\n",
    "forms": b"\r\nGET http://a/plaintext?q HTTP/1.1\r\n" + H + b"\r\n"
    + b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n"
    + b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
    # Request smuggling shapes (docs/http.md): each must be refused, the same way in any split.
    "cl_te": POST + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_cl": POST + TE + b"Content-Length: 4\r\n\r\n0\r\n\r\n",
    "cl_cl": POST + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\nab",
    "cl_list": POST + b"Content-Length: 1, 1\r\n\r\na",
    "cl_plus": POST + b"Content-Length: +3\r\n\r\nabc",
    "te_twice": POST + TE + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_gzip": POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "te_space": POST + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "te_fold": POST + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    "chunk_bare_cr": POST + TE + b"\r\n3\rXabcXY0\r\n\r\n",
    "chunk_bare_lf": POST + TE + b"\r\n3\nabc\n0\n\n",
    "chunk_overflow": POST + TE + b"\r\nfffffffffffffffff1\r\na\r\n0\r\n\r\n",
    "chunk_trailer_fold": POST + TE + b"\r\n0\r\nT: v\r\n w\r\n\r\n",
    "bare_lf_head": b"GET /plaintext HTTP/1.1\nHost: a\n\n",
    "two_hosts": b"GET /plaintext HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "http09": b"GET /plaintext\r\n\r\n",
    "http2": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "connect": b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
    "expect_other": POST + b"Expect: 200-ok\r\nContent-Length: 1\r\n\r\nx",
    "ws_before_field": b"GET /plaintext HTTP/1.1\r\n Host: a\r\n\r\n",
    "nul_in_value": b"GET /plaintext HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
}


def write_http():
    d = ROOT / "fuzz_http_session"
    d.mkdir(parents=True, exist_ok=True)
    for name, stream in REQUESTS.items():
        # Defaults, split into 1, 7 and 2-byte pieces (and an empty call), timeout at the end.
        (d / name).write_bytes(http(DEFAULTS, 0x1, [1, 7, 0, 2], stream))
    # Tiny limits, byte at a time as well: refusals fall on piece boundaries.
    for name in ("pipelined", "chunked", "routes", "te_cl", "plaintext"):
        (d / (name + "_tiny")).write_bytes(http(TINY, 0x3, [13, 3], REQUESTS[name]))
    # One request per connection, buffers never retained.
    (d / "pipelined_max1").write_bytes(
        http(bytes([0, 0, 0, 0, 0, 1, 1]), 0x2, [64], REQUESTS["pipelined"]))


# --- fuzz_chan_select: shape, capacities, then 3-byte ops [worker << 4 | kind][x][y]. ------

SEND, RECV, TRY_SEND, TRY_RECV, CLOSE, SELECT, SLEEP, LEN, TSEND, TRECV, SELDEF = range(11)


def op(worker, kind, x=0, y=0):
    return bytes([worker << 4 | kind, x, y])


def chan_program(workers, chans, caps, ops):
    shape = (workers - 2) | (chans - 1) << 1
    capb = sum(c << (2 * i) for i, c in enumerate(caps))
    return bytes([shape, capb]) + b"".join(ops)


def write_chan():
    d = ROOT / "fuzz_chan_select"
    d.mkdir(parents=True, exist_ok=True)
    seeds = {
        # A producer and a consumer on an unbuffered channel, then close and a drain.
        "ping_pong": chan_program(2, 1, [0], [op(0, SEND), op(1, RECV), op(0, SEND), op(1, RECV),
                                              op(0, CLOSE), op(1, RECV)]),
        # A buffered channel filled, closed, drained: FIFO and close-after-drain.
        "buffered_close": chan_program(2, 1, [3], [op(0, SEND), op(0, SEND), op(0, TRY_SEND),
                                                   op(0, TRY_SEND), op(0, CLOSE), op(1, RECV),
                                                   op(1, TRY_RECV), op(1, RECV), op(1, RECV)]),
        # Send on a closed channel and a double close.
        "closed_misuse": chan_program(2, 2, [1, 0], [op(0, CLOSE, 0), op(1, SEND, 0),
                                                     op(1, CLOSE, 0), op(0, TRY_SEND, 0),
                                                     op(1, LEN, 1)]),
        # Selects: two receives with a timeout; a send and a receive with a default.
        "select_mix": chan_program(3, 2, [0, 2], [op(0, SELECT, 0b00100000, 0x21 | 1 << 2),
                                                  op(1, SEND, 0), op(2, SELDEF, 0b00000101, 1),
                                                  op(1, SEND, 1), op(0, SELECT, 0, 0x20),
                                                  op(2, TRECV, 1, 3 << 2),
                                                  op(0, TSEND, 0, 2 << 2)]),
        # Everybody receives, nobody sends: the watch must rescue by closing.
        "deadlock_rescue": chan_program(3, 3, [0, 1, 2], [op(0, RECV, 0), op(1, RECV, 1),
                                                          op(2, SELECT, 0b00100010, 0x01)]),
        # Sleeps, yields and lone timeouts between sends on three channels.
        "timers": chan_program(2, 3, [1, 0, 3], [op(0, SLEEP, 0, 2 << 2 | 1), op(0, SEND, 2),
                                                 op(1, SLEEP, 0, 1 << 2), op(1, TRECV, 2, 3 << 2),
                                                 op(0, SLEEP, 0, 0), op(1, TRY_RECV, 2)]),
    }
    for name, data in seeds.items():
        (d / name).write_bytes(data)


# --- fuzz_reactor_buffer: opcode byte then its arguments. ---------------------------------

def u16(n):
    return struct.pack("<H", n)


def write_buffer():
    d = ROOT / "fuzz_reactor_buffer"
    d.mkdir(parents=True, exist_ok=True)
    seeds = {
        # Small appends and retrieves, then growth past kInitialBytes.
        "append_retrieve": bytes([0, 100, 2]) + u16(40) + bytes([0, 200]) + bytes([4]) + u16(100)
        + bytes([1]) + u16(5000) + bytes([2]) + u16(4000) + bytes([1]) + u16(3000) + bytes([3]),
        # The readv spill: a pipe with more than the free tail, a small scratch, then EOF.
        "read_spill": bytes([5]) + u16(6000) + bytes([6]) + u16(100) + u16(16000) + bytes([0, 50])
        + bytes([5]) + u16(3000) + bytes([6]) + u16(8000) + u16(1000) + bytes([7, 6]) + u16(10)
        + u16(10000) + bytes([6]) + u16(1) + u16(1),
        # Reclaim the consumed prefix by moving the live bytes down (no reallocation).
        "compact": bytes([1]) + u16(2000) + bytes([2]) + u16(1900) + bytes([1]) + u16(1500)
        + bytes([4]) + u16(1601),
        # An idle buffer gives its storage back and takes a spare (or a 1-byte one) again.
        "release_adopt": bytes([0, 10, 3, 8, 9]) + u16(0) + bytes([0, 100, 3, 8, 9]) + u16(0)
        + bytes([3, 8, 9]) + u16(1) + bytes([1]) + u16(3000) + bytes([5]) + u16(500) + bytes([6])
        + u16(64) + u16(9000),
    }
    for name, data in seeds.items():
        (d / name).write_bytes(data)


if __name__ == "__main__":
    write_http()
    write_chan()
    write_buffer()
