// router.cpp: route matching, 404/405 and the middleware chain (see router.hpp).
//
// Matching walks the routes in registration order and compares the path segment by segment,
// capturing parameters as views into the request's path: no allocation on a hit. A service has
// a handful of routes, so a linear scan beats a trie's pointer chasing; the 405 path (which
// builds an Allow value) is the only one that allocates.
//
// Percent-decoding (RFC 3986 §2.1) happens per segment, after the split on '/', so an encoded
// "/" ("%2F") stays inside its segment. A path without '%' (nearly all of them) is compared as
// it is; with one, literals are compared while decoding, and only a parameter value that holds
// an escape is decoded into the Request's own buffer (reserved to the path's size up front, so
// views into it stay valid while later parameters are added).
//
// The chain is resolve, then the middleware, then invoke: routing comes first so middleware
// sees Request::route (the pattern, a bounded label) before and after the handler it wraps.
#include "mpg/http/router.hpp"

#include <algorithm>
#include <stdexcept>

#include "http/chars.hpp"
#include "http/rules.hpp"

namespace mpg::http {

namespace {

// valid_escapes: every '%' in `s` starts a pct-encoded triplet "%" HEXDIG HEXDIG (RFC 3986
// §2.1); a '%' with anything else after it, or too near the end, is malformed.
bool valid_escapes(std::string_view s) {
  for (std::size_t i = s.find('%'); i != std::string_view::npos; i = s.find('%', i + 3))
    if (i + 2 >= s.size() || !detail::is(s[i + 1], detail::kHex) ||
        !detail::is(s[i + 2], detail::kHex))
      return false;
  return true;
}

// decode_into: appends `raw` percent-decoded to `out`; the escapes have been validated.
void decode_into(std::string_view raw, std::string& out) {
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%') {
      out.push_back(raw[i]);
      continue;
    }
    out.push_back(char(detail::hex_value(raw[i + 1]) * 16 + detail::hex_value(raw[i + 2])));
    i += 2;
  }
}

// decoded_equals: `raw` (validated escapes) decodes to `text`, compared without decoding into
// a buffer.
bool decoded_equals(std::string_view raw, std::string_view text) {
  std::size_t j = 0;
  for (std::size_t i = 0; i < raw.size(); ++i, ++j) {
    if (j == text.size()) return false;
    char c = raw[i];
    if (c == '%') {
      c = char(detail::hex_value(raw[i + 1]) * 16 + detail::hex_value(raw[i + 2]));
      i += 2;
    }
    if (c != text[j]) return false;
  }
  return j == text.size();
}

}  // namespace

Router::Router() { compose(); }

Router& Router::route(std::string_view method, std::string_view pattern, Handler h) {
  if (!detail::is_token(method)) throw std::invalid_argument("http: invalid route method");
  if (pattern.empty() || pattern.front() != '/')
    throw std::invalid_argument("http: route pattern must start with '/'");
  if (!valid_escapes(pattern))
    throw std::invalid_argument("http: malformed percent-encoding in route pattern");
  Route r{std::string(method), std::string(pattern), {}, std::move(h)};
  // "/a/{b}/" -> "a", {b}, "": the same split match() applies to paths.
  std::string_view rest = pattern.substr(1);
  while (true) {
    std::size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    const bool open = seg.find('{') != std::string_view::npos;
    const bool close = seg.find('}') != std::string_view::npos;
    if (open || close) {
      if (seg.size() < 3 || seg.front() != '{' || seg.back() != '}' ||
          seg.substr(1, seg.size() - 2).find_first_of("{}") != std::string_view::npos)
        throw std::invalid_argument("http: a route parameter must be a whole segment: {name}");
      r.segments.push_back(Segment{std::string(seg.substr(1, seg.size() - 2)), true});
    } else {
      Segment literal;
      decode_into(seg, literal.text);  // compared with decoded path segments
      r.segments.push_back(std::move(literal));
    }
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  routes_.push_back(std::move(r));
  return *this;
}

Router& Router::use(Middleware m) {
  middleware_.push_back(std::move(m));
  compose();
  return *this;
}

void Router::compose() {
  if (middleware_.empty()) {  // the common bare case: one call fewer
    chain_ = [this](const Request& req, Response& res) { dispatch(req, res); };
    return;
  }
  Handler h = [this](const Request& req, Response& res) { invoke(req, res); };
  for (auto it = middleware_.rbegin(); it != middleware_.rend(); ++it) h = (*it)(std::move(h));
  chain_ = [this, inner = std::move(h)](const Request& req, Response& res) {
    resolve(req);
    inner(req, res);
  };
}

// match: `r` matches req.path; fills req.params. `escaped`: the path holds a '%' (validated),
// and req.decoded_ has room for the whole path.
bool Router::match(const Route& r, const Request& req, bool escaped) {
  req.params.clear();
  req.decoded_.clear();
  std::string_view path = req.path;
  if (path.empty() || path.front() != '/') return false;  // "*" and the like match no route
  std::string_view rest = path.substr(1);
  for (std::size_t i = 0; i < r.segments.size(); ++i) {
    std::size_t slash = rest.find('/');
    const bool last = i + 1 == r.segments.size();
    if (last != (slash == std::string_view::npos)) return false;  // segment counts differ
    std::string_view seg = rest.substr(0, slash);
    const Segment& s = r.segments[i];
    if (s.param) {
      if (seg.empty()) return false;
      if (escaped && seg.find('%') != std::string_view::npos) {
        const std::size_t at = req.decoded_.size();
        decode_into(seg, req.decoded_);  // within the reserved capacity: earlier views hold
        seg = std::string_view(req.decoded_).substr(at);
      }
      req.params.push_back(Param{s.text, seg});
    } else if (escaped ? !decoded_equals(seg, s.text) : seg != s.text) {
      return false;
    }
    if (!last) rest.remove_prefix(slash + 1);
  }
  return true;
}

void Router::resolve(const Request& req) const {
  req.route = {};
  req.route_status_ = 404;
  const bool escaped = req.path.find('%') != std::string_view::npos;
  if (escaped) {
    if (!valid_escapes(req.path)) {  // RFC 3986 §2.1: "%" HEXDIG HEXDIG, nothing else
      req.params.clear();
      req.route_status_ = detail::kBadPercentEncoding.status;
      return;
    }
    req.decoded_.reserve(req.path.size());  // a decoded path is never longer
  }
  std::size_t get_for_head = routes_.size();
  bool path_known = false;
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    const Route& r = routes_[i];
    if (!match(r, req, escaped)) continue;
    if (r.method == req.method) {
      req.route = r.pattern;
      req.route_index_ = i;
      req.route_status_ = 0;
      return;
    }
    if (get_for_head == routes_.size() && req.is_head() && r.method == "GET") get_for_head = i;
    path_known = true;
  }
  if (get_for_head < routes_.size()) {  // RFC 9110 §9.3.2: HEAD is GET without the content
    const Route& r = routes_[get_for_head];
    match(r, req, escaped);
    req.route = r.pattern;
    req.route_index_ = get_for_head;
    req.route_status_ = 0;
    return;
  }
  req.params.clear();
  if (path_known) req.route_status_ = 405;
}

void Router::invoke(const Request& req, Response& res) const {
  if (req.route_status_ == 0 && req.route_index_ < routes_.size())
    return routes_[req.route_index_].handler(req, res);
  if (req.route_status_ == detail::kBadPercentEncoding.status) {
    res.text(detail::kBadPercentEncoding.detail, detail::kBadPercentEncoding.status);
    res.body.push_back('\n');
    return;
  }
  if (req.route_status_ == 405) return method_not_allowed(req, res);
  res.text("Not Found\n", 404);
}

void Router::method_not_allowed(const Request& req, Response& res) const {
  // RFC 9110 §15.5.6: a 405 lists the methods the target does support.
  const bool escaped = req.path.find('%') != std::string_view::npos;
  if (escaped) req.decoded_.reserve(req.path.size());
  std::vector<std::string_view> methods;
  for (const Route& r : routes_)
    if (match(r, req, escaped) &&
        std::find(methods.begin(), methods.end(), r.method) == methods.end())
      methods.push_back(r.method);
  req.params.clear();
  if (std::find(methods.begin(), methods.end(), "GET") != methods.end() &&
      std::find(methods.begin(), methods.end(), "HEAD") == methods.end())
    methods.push_back("HEAD");
  std::string allow;
  for (std::string_view m : methods) allow.append(allow.empty() ? "" : ", ").append(m);
  res.text("Method Not Allowed\n", 405);
  res.set_header("Allow", allow);
}

void Router::dispatch(const Request& req, Response& res) const {
  resolve(req);
  invoke(req, res);
}

}  // namespace mpg::http
