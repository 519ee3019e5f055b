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

// kContinue: the interim response to "Expect: 100-continue" (RFC 9110 §10.1.1, §15.2.1).
inline constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// status_line: "HTTP/1.1 <code> <reason>\r\n" for 100 <= code <= 599, precomputed.
std::string_view status_line(int code);

// append_response: writes `res` (status 200..599) to `out`: status line, Server, Date, the
// handler's fields, Content-Length (not for 204 and 304, RFC 9110 §8.6), Connection, then the
// body unless `head_only` (HEAD: the same fields, no content, RFC 9110 §9.3.2).
void append_response(std::string& out, const Response& res, bool head_only, ConnectionField conn);

// append_error: writes the refusal `r` with Connection: close and a one-line text body naming
// the rule (no body if `head_only`).
void append_error(std::string& out, Reject r, bool head_only);

}  // namespace mpg::http::detail
