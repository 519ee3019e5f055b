// head_rules.cpp: semantic checks on a parsed head (see head_rules.hpp). Each rule cites the
// RFC section it enforces; the byte-level rules live in head_scanner.cpp.
#include "http/head_rules.hpp"

#include <string_view>

#include "http/chars.hpp"

namespace mpg::http::detail {
namespace {

// Codings: a tally of the Transfer-Encoding field values' list elements (RFC 9110 §5.6.1).
struct Codings {
  bool present = false;
  int chunked = 0;     // elements equal to "chunked"
  bool other = false;  // a non-empty element that is not "chunked"
  bool empty = false;  // an empty element ("chunked,", ", chunked")
};

void tally_codings(std::string_view value, Codings& c) {
  c.present = true;
  while (true) {
    std::size_t comma = value.find(',');
    std::string_view element = trim_ows(value.substr(0, comma));
    if (element.empty()) {
      c.empty = true;
    } else if (iequals(element, "chunked")) {
      ++c.chunked;
    } else {
      c.other = true;
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

// split_target: path and query of an origin-form, asterisk-form or absolute-form target.
Reject split_target(const http_parser& parser, Request& req) {
  std::string_view t = req.target;
  if (t.front() == '/') {  // origin-form (RFC 9112 §3.2.1)
    std::size_t q = t.find('?');
    req.path = t.substr(0, q);
    req.query = q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
    return {};
  }
  if (t == "*") {  // asterisk-form: only for a server-wide OPTIONS (RFC 9112 §3.2.4)
    if (parser.method != HTTP_OPTIONS) return kBadTargetForm;
    req.path = t;
    return {};
  }
  // absolute-form (RFC 9112 §3.2.2): servers MUST accept it; its authority takes the place of
  // Host when routing, but Host must still be present and valid (checked by the caller).
  http_parser_url url;
  http_parser_url_init(&url);
  if (http_parser_parse_url(t.data(), t.size(), 0, &url) != 0) return kBadTargetForm;
  auto part = [&](int f) {
    return (url.field_set & (1 << f)) ? t.substr(url.field_data[f].off, url.field_data[f].len)
                                      : std::string_view{};
  };
  std::string_view scheme = part(UF_SCHEMA);
  if (!iequals(scheme, "http") && !iequals(scheme, "https")) return kBadTargetForm;
  req.path = part(UF_PATH);
  if (req.path.empty()) req.path = "/";  // an empty path means "/" (RFC 9112 §3.2.1)
  req.query = part(UF_QUERY);
  return {};
}

}  // namespace

bool valid_host(std::string_view v) {
  std::size_t i = 0;
  if (!v.empty() && v.front() == '[') {  // IP-literal: IPv6 or IPvFuture, loosely
    std::size_t close = v.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : v.substr(1, close - 1))
      if (!is(c, kHex) && c != ':' && c != '.' && c != 'v' && c != 'V') return false;
    i = close + 1;
  } else {  // reg-name or IPv4address (whose characters are a subset)
    while (i < v.size() && is(v[i], kRegName)) ++i;
  }
  if (i == v.size()) return true;
  if (v[i] != ':') return false;
  for (char c : v.substr(i + 1))  // port = *DIGIT
    if (c < '0' || c > '9') return false;
  return true;
}

Reject check_head(const http_parser& parser, const Limits& limits, Request& req, Framing& framing) {
  req.method = http_method_str(static_cast<http_method>(parser.method));
  req.version_minor = parser.http_minor;
  if (parser.http_major != 1) return kUnsupportedVersion;  // RFC 9110 §6.2, §15.6.6
  if (parser.method == HTTP_CONNECT) return kConnect;      // no tunnels here

  int hosts = 0;
  std::string_view host;
  Codings codings;
  bool expect_continue = false;
  bool expect_other = false;
  for (Field& f : req.headers) {
    f.value = trim_ows(f.value);  // RFC 9112 §5: OWS is not part of the value
    if (iequals(f.name, "host")) {
      ++hosts;
      host = f.value;
    } else if (iequals(f.name, "transfer-encoding")) {
      tally_codings(f.value, codings);
    } else if (iequals(f.name, "expect")) {
      (iequals(f.value, "100-continue") ? expect_continue : expect_other) = true;
    }
  }

  if (Reject r = split_target(parser, req)) return r;

  // RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, for more than one Host, and for an
  // invalid Host value (in any version).
  if (hosts > 1) return kRepeatedHost;
  if (hosts == 0 && req.version_minor >= 1) return kMissingHost;
  if (hosts == 1 && !valid_host(host)) return kBadHost;

  // RFC 9112 §6.1: only "chunked" is implemented, so any other coding is 501 (which also covers
  // "chunked not final", RFC 9112 §6.3 item 4); chunked must be applied exactly once. With
  // Content-Length as well, libhttp-parser has already refused the head (RFC 9112 §6.3 item 3;
  // mapped in reject_parser_error).
  if (codings.present) {
    if (codings.other) return kUnsupportedCoding;
    if (codings.chunked != 1 || codings.empty) return kBadCodingList;
    if (!(parser.flags & F_CHUNKED)) return kMalformed;  // the parser must frame it the same
    framing.chunked = true;
  }

  // RFC 9110 §15.5.14: refuse an oversized body before reading it (and before 100 Continue).
  const bool has_length = (parser.flags & F_CONTENTLENGTH) != 0;
  if (has_length && parser.content_length > limits.max_body) return kBodyTooLarge;

  // RFC 9110 §10.1.1: 417 for an expectation we do not meet; 100-continue is ignored in
  // HTTP/1.0 and needless when there is no content.
  if (expect_other) return kBadExpect;
  framing.expect_continue = expect_continue && req.version_minor >= 1 &&
                            (framing.chunked || (has_length && parser.content_length > 0));

  // RFC 9112 §9.3 (1.1 persists unless "close"; 1.0 only with "keep-alive"), and §6.1: an
  // HTTP/1.0 message with Transfer-Encoding has faulty framing: close after it.
  req.keep_alive =
      http_should_keep_alive(&parser) != 0 && !(framing.chunked && req.version_minor == 0);
  return {};
}

Reject reject_parser_error(http_errno e, const Request& req) {
  switch (e) {
    case HPE_INVALID_METHOD:
      return kUnknownMethod;  // the scanner checked it is a token; the parser does not know it
    case HPE_HEADER_OVERFLOW:
      return kHeaderTooLarge;  // the parser's own cap (80 KiB), above configured limits
    case HPE_UNEXPECTED_CONTENT_LENGTH:
      return req.find_header("transfer-encoding") ? kLengthAndChunked : kRepeatedLength;
    case HPE_INVALID_CONTENT_LENGTH:
      return kBadLength;  // not 1*DIGIT: "+5", "5x", "", "5, 5" (lists are refused)
    case HPE_INVALID_URL:
    case HPE_INVALID_HOST:
    case HPE_INVALID_PORT:
    case HPE_INVALID_PATH:
    case HPE_INVALID_QUERY_STRING:
    case HPE_INVALID_FRAGMENT:
      return kBadTargetForm;
    default:
      return kMalformed;
  }
}

}  // namespace mpg::http::detail
