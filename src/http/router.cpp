// router.cpp: route matching, 404/405 and the middleware chain (see router.hpp).
//
// Matching walks the routes in registration order and compares the path segment by segment,
// capturing parameters as views into the request's path: no allocation on a hit. A service has
// a handful of routes, so a linear scan beats a trie's pointer chasing; the 405 path (which
// builds an Allow value) is the only one that allocates.
#include "mpg/http/router.hpp"

#include <algorithm>
#include <stdexcept>

#include "http/chars.hpp"

namespace mpg::http {

Router::Router() { compose(); }

Router& Router::route(std::string_view method, std::string_view pattern, Handler h) {
  if (!detail::is_token(method)) throw std::invalid_argument("http: invalid route method");
  if (pattern.empty() || pattern.front() != '/')
    throw std::invalid_argument("http: route pattern must start with '/'");
  Route r{std::string(method), {}, std::move(h)};
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
      r.segments.push_back(Segment{std::string(seg), false});
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
  Handler h = [this](const Request& req, Response& res) { dispatch(req, res); };
  for (auto it = middleware_.rbegin(); it != middleware_.rend(); ++it) h = (*it)(std::move(h));
  chain_ = std::move(h);
}

bool Router::match(const Route& r, std::string_view path, std::vector<Param>& params) {
  params.clear();
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
      params.push_back(Param{s.text, seg});
    } else if (seg != s.text) {
      return false;
    }
    if (!last) rest.remove_prefix(slash + 1);
  }
  return true;
}

void Router::dispatch(const Request& req, Response& res) const {
  const Route* get_for_head = nullptr;
  bool path_known = false;
  for (const Route& r : routes_) {
    if (!match(r, req.path, req.params)) continue;
    if (r.method == req.method) return r.handler(req, res);
    if (!get_for_head && req.is_head() && r.method == "GET") get_for_head = &r;
    path_known = true;
  }
  if (get_for_head) {  // RFC 9110 §9.3.2: HEAD is GET without the content
    match(*get_for_head, req.path, req.params);
    return get_for_head->handler(req, res);
  }
  req.params.clear();
  if (!path_known) return res.text("Not Found\n", 404);
  // RFC 9110 §15.5.6: a 405 lists the methods the target does support.
  std::vector<std::string_view> methods;
  std::vector<Param> scratch;
  for (const Route& r : routes_)
    if (match(r, req.path, scratch) &&
        std::find(methods.begin(), methods.end(), r.method) == methods.end())
      methods.push_back(r.method);
  if (std::find(methods.begin(), methods.end(), "GET") != methods.end() &&
      std::find(methods.begin(), methods.end(), "HEAD") == methods.end())
    methods.push_back("HEAD");
  std::string allow;
  for (std::string_view m : methods) allow.append(allow.empty() ? "" : ", ").append(m);
  res.text("Method Not Allowed\n", 405);
  res.set_header("Allow", allow);
}

}  // namespace mpg::http
