// request.hpp: one HTTP request as a handler sees it.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mpg::http {

// Field: one header field line; the value without its surrounding whitespace (RFC 9112 §5).
struct Field {
  std::string_view name;
  std::string_view value;
};

// Param: one route parameter: pattern "/kv/{key}" against path "/kv/a" gives {"key", "a"}. The
// value is percent-decoded (RFC 3986 §2.1): "/kv/a%2Fb" gives "a/b".
struct Param {
  std::string_view name;
  std::string_view value;
};

// Request: one parsed request; owned by its ServerSession, reused (capacity and all) for the
// connection's next request, touched only by the thread driving that session. Every view points
// into the session's buffers or the transport's input, and is valid only until the handler
// returns: copy what must outlive the call.
struct Request {
  std::string_view method;     // as sent, e.g. "GET"
  std::string_view target;     // the request-target as sent, e.g. "/kv/a?x=1"
  std::string_view path;       // the target's path as sent (not percent-decoded); "*" for "OPTIONS *"
  std::string_view query;      // after the '?', without it; empty if none
  int version_minor = 1;       // HTTP/1.x; a minor above 1 gets HTTP/1.1 semantics (RFC 9110 §2.5)
  bool keep_alive = true;      // the connection persists after this request (RFC 9112 §9.3)
  std::vector<Field> headers;  // in the order received
  std::string_view body;       // the content, after chunked decoding
  // remote_ip: the connection's peer address without the port ("192.0.2.1", "2001:db8::1"), or
  // "" for a Unix socket or a transport that does not fill it. Set for every request from what
  // the transport knows of its connection; valid during the handler call, like every view here.
  // The per-client rate limit keys on it (mpg::kit::RateLimiter).
  std::string_view remote_ip;
  // params: set by the Router while it routes this request (hence mutable: the handler API
  // passes const Request&).
  mutable std::vector<Param> params;
  // route: the pattern of the route the Router chose for this request, as registered (e.g.
  // "/kv/{key}", never the path itself, so a label made of it has as many values as the Router
  // has routes); "" when no route's handler runs (404, 405, a malformed path's 400) or no Router
  // routed the request. Set before the Router's middleware runs, so middleware may read it
  // before and after calling the next handler (mpg::kit::HttpMetrics labels requests by it).
  // Points into the Router's storage.
  mutable std::string_view route;

  // find_header: the first field named `name` (ASCII case-insensitive), or nullptr.
  const Field* find_header(std::string_view name) const;
  // header: that field's value, or "" if absent.
  std::string_view header(std::string_view name) const;
  // param: the route parameter `name`, or "" if the route has none by that name.
  std::string_view param(std::string_view name) const;
  bool is_head() const { return method == "HEAD"; }
  // clear: empties every field, keeping the vectors' capacity.
  void clear();

 private:
  friend class Router;
  // The Router's verdict, kept from its matching (before the middleware) to the call of the
  // route's handler (inside it): route_status_ 0 means routes_[route_index_] serves the
  // request; 400, 404 or 405, that the Router answers itself.
  mutable std::size_t route_index_ = 0;
  mutable int route_status_ = 404;
  // decoded_: the percent-decoded values of parameters that held a '%'; reused, like the
  // vectors, so a request with escapes allocates nothing once it has grown.
  mutable std::string decoded_;
};

}  // namespace mpg::http
