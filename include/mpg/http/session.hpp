// session.hpp: one connection's HTTP/1.1 server side, without I/O: bytes in, bytes out.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "mpg/http/handler.hpp"
#include "mpg/http/limits.hpp"

namespace mpg::http {

class Router;

// SessionStatus: what the transport does after a call.
enum class SessionStatus : std::uint8_t {
  kKeepReading,      // write what was appended to `out` (maybe nothing), then read more input
  kCloseAfterWrite,  // write what was appended to `out`, then close; further input is ignored
};

// ServerSession: the HTTP/1.1 server side of one connection, "sans I/O": the transport (a
// goroutine reading a socket, a reactor callback, a hybrid) hands it whatever bytes arrived and
// writes out whatever it appends, so all three servers share parsing, limits and response
// bytes. Owned by its connection; one thread at a time. Never blocks, never reads a socket or
// a timer. See docs/http.md.
//
// Input: on_data consumes all of `input` every call, copying only what a later call still needs
// (a header that arrived in pieces, a body), so a reactor can pass its input buffer and drop it,
// and a goroutine can reuse one fixed read buffer. Output: every response that input completes
// is appended to `out`, in request order, so one read gives one write however many requests
// were pipelined. The bytes appended are the same however the input is split (but for Date).
class ServerSession {
 public:
  using Clock = std::chrono::steady_clock;

  // The handler (or router) is shared, not copied: it must outlive the session. A temporary
  // would not, so those overloads are deleted (pass a named Handler, not a bare lambda).
  explicit ServerSession(const Handler& handler, const Limits& limits = {});
  explicit ServerSession(const Router& router, const Limits& limits = {});
  ServerSession(Handler&&, const Limits& = {}) = delete;
  ServerSession(Router&&, const Limits& = {}) = delete;
  ~ServerSession();
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  // on_data: parses `input`, calls the handler for each complete request, and appends the
  // responses (and any "100 Continue") to `out`. After a refused request (4xx/5xx with
  // Connection: close), a Connection: close exchange, or the last request the limits allow,
  // returns kCloseAfterWrite and ignores all later input.
  SessionStatus on_data(std::string_view input, std::string& out);

  // header_pending: a request's first byte has arrived and its header section has not ended;
  // the transport's header deadline (Limits::header_timeout) runs.
  bool header_pending() const;
  // header_started: when the on_data call that brought that first byte ran (the session reads
  // the clock only for headers that span calls); meaningful while header_pending().
  Clock::time_point header_started() const;
  // header_deadline: header_started() + Limits::header_timeout.
  Clock::time_point header_deadline() const;
  // on_header_timeout: the transport's header deadline passed. If a header is still pending,
  // appends a 408 with Connection: close and returns kCloseAfterWrite; otherwise does nothing.
  SessionStatus on_header_timeout(std::string& out);

  // idle: between requests (no byte of the next one yet): the idle timeout applies.
  bool idle() const;
  // closed: no more input will be taken (after kCloseAfterWrite).
  bool closed() const;
  // requests: requests answered by the handler on this connection.
  std::uint64_t requests() const;
  // set_remote_ip: the peer's address without the port, given to every request as
  // Request::remote_ip (the per-client rate limit keys on it). The transport owns the string and
  // keeps it alive as long as the session.
  void set_remote_ip(std::string_view ip) { remote_ip_ = ip; }
  const Limits& limits() const;

 private:
  struct Impl;
  // The parsing state (parser, request, response, buffers: ~1.5 KiB) is lent from a per-thread
  // pool while a request is in progress and given back whenever the connection is between
  // requests, so an idle keep-alive connection costs only this shell (docs/http.md).
  const Handler* handler_;
  const Limits* limits_;  // an interned copy: one per distinct Limits value in the process
  Impl* impl_ = nullptr;
  std::uint64_t served_ = 0;
  std::string_view remote_ip_;
  bool closed_ = false;
};

}  // namespace mpg::http
