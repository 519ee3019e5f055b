// writer.hpp: the response serializer: status line, fields, body, appended to a std::string.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "http/rules.hpp"
#include "mpg/http/response.hpp"

namespace mpg::http::detail {

// ConnectionField: which Connection field a response carries (RFC 9112 §9.3, §9.6).
enum class ConnectionField : std::uint8_t {
  kNone,       // HTTP/1.1 persistent: nothing to say
  kClose,      // "Connection: close": the server closes after this response
  kKeepAlive,  // "Connection: keep-alive": an HTTP/1.0 client asked to persist, and may
};

// BodyFraming: how the client finds a response's end (RFC 9112 §6.3).
enum class BodyFraming : std::uint8_t {
  kLength,   // Content-Length (a whole body, or none at all)
  kChunked,  // Transfer-Encoding: chunked (RFC 9112 §7.1): a streamed body to an HTTP/1.1 client
  kClose,    // neither: the body ends at the close (§6.3 item 8): a streamed body to HTTP/1.0
};

// body_framing: the framing of `res` to a client that sent HTTP/1.<version_minor>: a chunked
// response (Response::write_chunk) goes chunked to HTTP/1.1, close-delimited to HTTP/1.0 (no
// Transfer-Encoding to a 1.0 request, RFC 9112 §6.1); 204 and 304 carry no content either way.
BodyFraming body_framing(const Response& res, int version_minor);

// kContinue: the interim response to "Expect: 100-continue" (RFC 9110 §10.1.1, §15.2.1).
inline constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// status_line: "HTTP/1.1 <code> <reason>\r\n" for 100 <= code <= 599, precomputed.
std::string_view status_line(int code);

// append_response: writes `res` (status 200..599) to `out`: status line, Server, Date, the
// handler's fields, the framing field (Content-Length, not for 204 and 304, RFC 9110 §8.6; or
// Transfer-Encoding: chunked; or none for kClose), Connection, then the body unless `head_only`
// (HEAD: the same fields, no content, RFC 9110 §9.3.2): whole, or each piece of a chunked
// response as a chunk and the last-chunk. kClose needs `conn` kClose.
void append_response(std::string& out, const Response& res, bool head_only, ConnectionField conn,
                     BodyFraming framing = BodyFraming::kLength);

// append_error: writes the refusal `r` with Connection: close and a one-line text body naming
// the rule (no body if `head_only`).
void append_error(std::string& out, Reject r, bool head_only);

}  // namespace mpg::http::detail
