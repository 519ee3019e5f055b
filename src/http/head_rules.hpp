// head_rules.hpp: the checks on a parsed request head that need its meaning, not just its bytes
// (Host, framing, expectations, target form), run when libhttp-parser reaches the head's end.
#pragma once
#include <http_parser.h>

#include "http/rules.hpp"
#include "mpg/http/limits.hpp"
#include "mpg/http/request.hpp"

namespace mpg::http::detail {

// Framing: what the head says about the body and the connection, for the session.
struct Framing {
  bool chunked = false;          // the body is chunked (else Content-Length or none)
  bool expect_continue = false;  // answer "100 Continue" before reading the body
};

// check_head: called from on_headers_complete with the fields collected. Fills req's method,
// version, path, query and keep_alive, trims each field value's trailing whitespace, and
// returns the first rule the head breaks (in the order RFC 9112 reads: version, method, target,
// Host, Transfer-Encoding, Content-Length, Expect), or no Reject.
Reject check_head(const http_parser& parser, const Limits& limits, Request& req, Framing& framing);

// reject_parser_error: the refusal for an error libhttp-parser reported on a head that the
// HeadScanner had accepted (so its syntax was sound): an unknown method, a bad Content-Length,
// a target form the parser does not take, ...
Reject reject_parser_error(http_errno e, const Request& req);

// valid_host: `v` is a Host field value: uri-host [ ":" port ] (RFC 9112 §3.2, RFC 3986 §3.2.2).
bool valid_host(std::string_view v);

}  // namespace mpg::http::detail
