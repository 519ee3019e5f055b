// test_support.hpp: helpers shared by the http tests: run a session over some input (whole, a
// byte at a time, or in given pieces), split its output into responses, and an echo handler
// that reports everything the session parsed, so comparing outputs compares parses too.
#pragma once
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "http/rules.hpp"
#include "mpg/http/date.hpp"
#include "mpg/http/session.hpp"

namespace mpg::http::test {

// normalize_date: every Date value replaced by "<date>", so outputs from different seconds
// compare equal.
inline std::string normalize_date(std::string s) {
  constexpr std::string_view kField = "\r\nDate: ";
  for (std::size_t at = s.find(kField); at != std::string::npos; at = s.find(kField, at + 1))
    s.replace(at + kField.size(), kHttpDateLength, "<date>");
  return s;
}

// Fed: what a session appended over a run, and its last status.
struct Fed {
  std::string out;
  SessionStatus status = SessionStatus::kKeepReading;
};

// feed_pieces: feeds `input` to `s` in pieces of sizes[0], sizes[1], ... (cycled; empty: whole),
// each from its own heap copy (as a transport's reused buffer would be, so ASan catches a view
// kept into it), until the input ends or the session asks to close.
inline Fed feed_pieces(ServerSession& s, std::string_view input,
                       const std::vector<std::size_t>& sizes = {}) {
  Fed fed;
  std::size_t i = 0;
  while (!input.empty() && fed.status == SessionStatus::kKeepReading) {
    std::size_t n = sizes.empty() ? input.size() : sizes[i++ % sizes.size()];
    n = std::min(std::max<std::size_t>(n, 1), input.size());
    std::vector<char> piece(input.begin(), input.begin() + n);
    fed.status = s.on_data({piece.data(), piece.size()}, fed.out);
    input.remove_prefix(n);
  }
  return fed;
}

// serve: a fresh session with `h` and `limits` fed `input` in pieces of `sizes`.
inline Fed serve(const Handler& h, std::string_view input, const Limits& limits = {},
                 const std::vector<std::size_t>& sizes = {}) {
  ServerSession s(h, limits);
  return feed_pieces(s, input, sizes);
}

// echo: answers 200 text/plain with a dump of the request: the request line's parts, version,
// keep-alive, every field and the body.
inline void echo(const Request& r, Response& res) {
  std::string b;
  b.append(r.method).append(" ").append(r.target).append(" path=").append(r.path);
  b.append(" query=").append(r.query).append(" 1.").append(std::to_string(r.version_minor));
  b.append(r.keep_alive ? " keep\n" : " close\n");
  for (const Field& f : r.headers) b.append(f.name).append(": [").append(f.value).append("]\n");
  b.append("body=").append(r.body);
  res.text(b);
}

// echo_handler: echo as a named Handler, for sessions built directly (a session keeps a
// reference to its handler, so it must not be a temporary).
inline const Handler& echo_handler() {
  static const Handler h = echo;
  return h;
}

// Parsed: one response split out of a session's output.
struct Parsed {
  int status = 0;
  std::string head;  // status line and fields, with the empty line
  std::string body;

  // field: the value of the first field `name` (exact case), or "" if absent.
  std::string field(std::string_view name) const {
    std::string key = "\r\n" + std::string(name) + ": ";
    std::size_t at = head.find(key);
    if (at == std::string::npos) return {};
    at += key.size();
    return head.substr(at, head.find("\r\n", at) - at);
  }
  bool closes() const { return field("Connection") == "close"; }
};

// parse_responses: splits `out` into responses by Content-Length (no body for a 1xx, nor for any
// response when `head_request`). Fails the test on a malformed stream.
inline std::vector<Parsed> parse_responses(std::string_view out, bool head_request = false) {
  std::vector<Parsed> all;
  while (!out.empty()) {
    std::size_t end = out.find("\r\n\r\n");
    if (end == std::string_view::npos || out.substr(0, 9) != "HTTP/1.1 ") {
      ADD_FAILURE() << "malformed response stream: " << out.substr(0, 200);
      break;
    }
    Parsed p;
    p.head = std::string(out.substr(0, end + 4));
    p.status = std::stoi(p.head.substr(9, 3));
    out.remove_prefix(end + 4);
    std::string length = p.field("Content-Length");
    if (p.status >= 200 && !head_request && !length.empty()) {
      std::size_t n = std::stoul(length);
      if (n > out.size()) {
        ADD_FAILURE() << "response body shorter than its Content-Length";
        break;
      }
      p.body = std::string(out.substr(0, n));
      out.remove_prefix(n);
    }
    all.push_back(std::move(p));
  }
  return all;
}

// only_response: the single response in `out` (fails the test if there is not exactly one).
inline Parsed only_response(std::string_view out) {
  std::vector<Parsed> all = parse_responses(out);
  EXPECT_EQ(all.size(), 1u) << out;
  return all.empty() ? Parsed{} : all.front();
}

// expect_refused: `request` is refused by rule `r`, fed whole and a byte at a time: exactly one
// response with the rule's status and detail line, Connection: close, and a closed session.
inline void expect_refused(std::string_view request, detail::Reject r, const Limits& limits = {}) {
  for (std::vector<std::size_t> split : {std::vector<std::size_t>{}, std::vector<std::size_t>{1}}) {
    SCOPED_TRACE(split.empty() ? "whole" : "byte at a time");
    Fed fed = serve(echo, request, limits, split);
    Parsed p = only_response(fed.out);
    EXPECT_EQ(p.status, r.status) << fed.out;
    EXPECT_EQ(p.body, std::string(r.detail) + "\n");
    EXPECT_TRUE(p.closes());
    EXPECT_EQ(fed.status, SessionStatus::kCloseAfterWrite);
  }
}

// expect_served: `request` is answered 200 by echo; returns the body (the echo of the parse).
inline std::string expect_served(std::string_view request, const Limits& limits = {}) {
  Fed fed = serve(echo, request, limits);
  Parsed p = only_response(fed.out);
  EXPECT_EQ(p.status, 200) << fed.out;
  return p.body;
}

}  // namespace mpg::http::test
