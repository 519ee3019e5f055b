// rules.hpp: every reason the core refuses a request, with its status and the RFC rule, in one
// table. The detail is the error response's body, so a peer (and a test) can see which rule fired.
#pragma once
#include <string_view>

namespace mpg::http::detail {

// Reject: a refusal: the status to answer and one line naming the rule. status 0 = no refusal.
struct Reject {
  int status = 0;
  std::string_view detail;
  explicit operator bool() const { return status != 0; }
};

// Request line (RFC 9112 §3).
inline constexpr Reject kRequestLineTooLong{414, "request line too long"};
inline constexpr Reject kBadMethod{400, "invalid character in method (RFC 9112 §3.1)"};
inline constexpr Reject kUnknownMethod{501, "method not implemented (RFC 9110 §9.1)"};
inline constexpr Reject kBadTarget{400, "invalid character in request-target (RFC 9112 §3.2)"};
inline constexpr Reject kBadTargetForm{400, "invalid request-target form (RFC 9112 §3.2)"};
inline constexpr Reject kBadVersion{400, "missing or malformed HTTP-version (RFC 9112 §2.3)"};
inline constexpr Reject kUnsupportedVersion{505,
                                            "HTTP major version not supported (RFC 9110 §6.2)"};
inline constexpr Reject kConnect{501, "CONNECT not implemented (RFC 9110 §9.3.6)"};

// Line endings and field syntax (RFC 9112 §2.2, §5; RFC 9110 §5.5).
inline constexpr Reject kBareCR{400, "bare CR (RFC 9112 §2.2)"};
inline constexpr Reject kBareLF{400, "bare LF without CR (RFC 9112 §2.2)"};
inline constexpr Reject kSpaceAfterStartLine{
    400, "whitespace between start-line and first field (RFC 9112 §2.2)"};
inline constexpr Reject kObsFold{400, "obs-fold in a header field (RFC 9112 §5.2)"};
inline constexpr Reject kSpaceBeforeColon{
    400, "whitespace between field name and colon (RFC 9112 §5.1)"};
inline constexpr Reject kBadFieldName{400, "invalid character in field name (RFC 9110 §5.1)"};
inline constexpr Reject kBadFieldValue{400,
                                       "NUL or control character in field value (RFC 9110 §5.5)"};
inline constexpr Reject kHeaderTooLarge{431, "header section too large (RFC 6585 §5)"};
inline constexpr Reject kTooManyFields{431, "too many header fields (RFC 6585 §5)"};

// Host (RFC 9112 §3.2).
inline constexpr Reject kMissingHost{400, "HTTP/1.1 request without Host (RFC 9112 §3.2)"};
inline constexpr Reject kRepeatedHost{400, "more than one Host (RFC 9112 §3.2)"};
inline constexpr Reject kBadHost{400, "invalid Host value (RFC 9112 §3.2)"};

// Framing (RFC 9112 §6, §7).
inline constexpr Reject kLengthAndChunked{
    400, "Content-Length together with Transfer-Encoding (RFC 9112 §6.1, §6.3)"};
inline constexpr Reject kRepeatedLength{400, "repeated Content-Length (RFC 9112 §6.3)"};
inline constexpr Reject kBadLength{400, "malformed Content-Length (RFC 9112 §6.3)"};
inline constexpr Reject kUnsupportedCoding{501,
                                           "transfer coding other than chunked (RFC 9112 §6.1)"};
inline constexpr Reject kBadCodingList{
    400, "Transfer-Encoding must be exactly one chunked (RFC 9112 §6.1)"};
inline constexpr Reject kBodyTooLarge{413, "content too large (RFC 9110 §15.5.14)"};
inline constexpr Reject kBadChunkSize{400, "malformed chunk-size line (RFC 9112 §7.1)"};
inline constexpr Reject kChunkLineTooLong{400, "chunk-size line too long (RFC 9112 §7.1.1)"};
inline constexpr Reject kBadChunkEnd{400, "chunk data not followed by CRLF (RFC 9112 §7.1)"};
inline constexpr Reject kBadExpect{417, "unsupported expectation (RFC 9110 §10.1.1)"};

// Routing (Router, not the session: the request is framed fine, so the connection lives on).
inline constexpr Reject kBadPercentEncoding{400,
                                            "malformed percent-encoding in path (RFC 3986 §2.1)"};

// Anything else libhttp-parser refuses, and its internal disagreements with our scanners.
inline constexpr Reject kMalformed{400, "malformed request (RFC 9112 §2.2)"};
inline constexpr Reject kHeaderTimeout{408, "request header not received in time"};

}  // namespace mpg::http::detail
