// writer.cpp: the response serializer (see writer.hpp).
//
// The hot path is a handful of appends of precomputed pieces (status line, "Server: mpg" and
// the Date, which http_date() caches per thread) and one std::to_chars: no iostreams, no
// formatting library, no allocation once `out` has grown to its working size.
#include "http/writer.hpp"

#include <http_parser.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <string>

#include "mpg/http/date.hpp"

namespace mpg::http::detail {
namespace {

constexpr int kFirstStatus = 100;
constexpr int kLastStatus = 599;

std::array<std::string, kLastStatus - kFirstStatus + 1> make_status_lines() {
  std::array<std::string, kLastStatus - kFirstStatus + 1> lines;
  for (int code = kFirstStatus; code <= kLastStatus; ++code) {
    std::string_view reason = http_status_str(static_cast<http_status>(code));
    if (reason == "<unknown>") reason = {};  // RFC 9112 §4: the reason-phrase may be empty
    std::string& line = lines[code - kFirstStatus];
    line.append("HTTP/1.1 ").append(std::to_string(code)).append(" ").append(reason);
    line.append("\r\n");
  }
  return lines;
}

// kNoLength, kChunkedLength: append_head's content_length for no framing field, and for
// Transfer-Encoding: chunked.
constexpr long long kNoLength = -1;
constexpr long long kChunkedLength = -2;

// append_head: everything up to and including the empty line; content_length >= 0 writes it as
// Content-Length, else kNoLength or kChunkedLength.
void append_head(std::string& out, int code, std::string_view fields, long long content_length,
                 ConnectionField conn) {
  out.append(status_line(code));
  out.append("Server: mpg\r\nDate: ");
  out.append(http_date());
  out.append("\r\n");
  out.append(fields);
  if (content_length >= 0) {
    char digits[24];
    auto r = std::to_chars(digits, digits + sizeof digits, content_length);
    out.append("Content-Length: ");
    out.append(digits, r.ptr - digits);
    out.append("\r\n");
  } else if (content_length == kChunkedLength) {
    out.append("Transfer-Encoding: chunked\r\n");
  }
  switch (conn) {
    case ConnectionField::kNone:
      break;
    case ConnectionField::kClose:
      out.append("Connection: close\r\n");
      break;
    case ConnectionField::kKeepAlive:
      out.append("Connection: keep-alive\r\n");
      break;
  }
  out.append("\r\n");
}

// append_chunked: the body's pieces as chunks (chunk-size in lowercase hex, CRLF, data, CRLF),
// then the last-chunk and the empty trailer section (RFC 9112 §7.1). A handler that changed
// `body` after write_chunk is served what is there: pieces past its end are cut, bytes past the
// last piece are one more chunk.
void append_chunked(std::string& out, const Response& res) {
  std::string_view body = res.body;
  std::size_t from = 0;
  auto chunk = [&out, body, &from](std::size_t to) {
    if (to <= from) return;  // never a zero-size chunk before the end
    char digits[24];
    auto r = std::to_chars(digits, digits + sizeof digits, to - from, 16);
    out.append(digits, r.ptr - digits);
    out.append("\r\n");
    out.append(body.substr(from, to - from));
    out.append("\r\n");
    from = to;
  };
  for (std::size_t end : res.chunk_ends()) chunk(std::min(end, body.size()));
  chunk(body.size());
  out.append("0\r\n\r\n");
}

}  // namespace

BodyFraming body_framing(const Response& res, int version_minor) {
  if (!res.chunked() || res.status == 204 || res.status == 304) return BodyFraming::kLength;
  return version_minor == 0 ? BodyFraming::kClose : BodyFraming::kChunked;
}

std::string_view status_line(int code) {
  static const auto lines = make_status_lines();
  return lines[code - kFirstStatus];
}

void append_response(std::string& out, const Response& res, bool head_only, ConnectionField conn,
                     BodyFraming framing) {
  // RFC 9110 §8.6: no Content-Length in a 204; a 304 has no content either (§15.4.5).
  const bool no_content = res.status == 204 || res.status == 304;
  long long length = static_cast<long long>(res.body.size());
  if (no_content || framing == BodyFraming::kClose) length = kNoLength;
  if (!no_content && framing == BodyFraming::kChunked) length = kChunkedLength;
  append_head(out, res.status, res.header_block(), length, conn);
  if (head_only || no_content) return;
  if (framing == BodyFraming::kChunked) return append_chunked(out, res);
  out.append(res.body);
}

void append_error(std::string& out, Reject r, bool head_only) {
  append_head(out, r.status, "Content-Type: text/plain\r\n",
              static_cast<long long>(r.detail.size() + 1), ConnectionField::kClose);
  if (head_only) return;
  out.append(r.detail);
  out.push_back('\n');
}

}  // namespace mpg::http::detail
