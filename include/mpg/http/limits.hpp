// limits.hpp: every bound the HTTP/1.1 core puts on a peer, with its unit, default and reason.
#pragma once
#include <chrono>
#include <cstddef>

namespace mpg::http {

// Limits: what one connection's peer may send, and the timeouts its transport enforces; a plain
// value copied into each ServerSession. The session enforces the sizes itself (answering with
// the status named here and closing); it does no I/O, so the times are the transport's to
// enforce: the session only says when a header became due (ServerSession::header_deadline).
struct Limits {
  // max_request_line: bytes of the request line, its CRLF and any empty lines before it
  // (RFC 9112 §2.2); 414 beyond. 8 KiB is what nginx and Go's net/http accept.
  std::size_t max_request_line = 8 * 1024;
  // max_header_bytes: bytes of the field lines and the empty line that ends them; 431 beyond.
  // The trailer section of a chunked body gets the same bound.
  std::size_t max_header_bytes = 16 * 1024;
  // max_header_fields: field lines in the header (or trailer) section; 431 beyond. Bounds the
  // per-request work of every lookup, which scans the fields.
  std::size_t max_header_fields = 100;
  // header_timeout: from a request's first byte to the end of its header section. The transport
  // answers 408 (ServerSession::on_header_timeout) and closes when it passes; this bounds
  // "slowloris" peers that trickle a header to hold a connection.
  std::chrono::milliseconds header_timeout{10'000};
  // max_body: bytes of content after chunked decoding; 413 beyond. A Content-Length above it is
  // refused before any of the body is read (and before 100 Continue).
  std::size_t max_body = 1024 * 1024;
  // max_chunk_line: bytes of one chunk-size line with its extensions; 400 beyond, so extensions
  // (which the core ignores) cannot be used to make it scan forever.
  std::size_t max_chunk_line = 4 * 1024;
  // idle_timeout: how long a kept-alive connection may sit between requests before the
  // transport closes it (silently: no request is in progress, RFC 9112 §9.5).
  std::chrono::milliseconds idle_timeout{60'000};
  // max_requests_per_connection: requests served on one connection (0: unlimited); the last
  // response carries Connection: close, which spreads long-lived clients across servers.
  std::size_t max_requests_per_connection = 0;
  // retain_bytes: capacity a session keeps in its head and body buffers between requests;
  // larger ones (left by a big body, or a header that arrived in many reads) are freed, so a
  // server with 10k idle connections does not hold 10k high-water marks.
  std::size_t retain_bytes = 16 * 1024;

  bool operator==(const Limits&) const = default;
};

}  // namespace mpg::http
