// router.hpp: maps a method and a path pattern with parameters to a handler.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mpg/http/handler.hpp"

namespace mpg::http {

// Router: method + path pattern -> handler, with middleware around the whole dispatch. Built on
// one thread before serving; afterwards const and shared by every session on every thread
// (dispatch only reads). Not copyable or movable: handler() refers to this object.
//
// A pattern is a path whose segments are literals or "{name}" parameters: "/kv/{key}" matches
// "/kv/a" (param "key" = "a") but not "/kv" or "/kv/a/b"; a parameter matches one non-empty
// segment. The path is split on '/' first and each segment percent-decoded after (RFC 3986
// §2.1), so "%2F" never separates segments: "/kv/a%2Fb" matches "/kv/{key}" with key "a/b".
// Literals compare with the decoded segment (a pattern's literals are decoded too, so "/a%20b"
// and "/a b" are one pattern); a path with a malformed escape ("%G1", a truncated "%4") gets 400.
// Request::path and target stay as sent. The first route registered that matches the method and
// path wins. HEAD is served by a GET route when no HEAD route matches (RFC 9110 §9.3.2; the
// session drops the body). No route for the path: 404. Routes for the path but not the method:
// 405 with Allow (RFC 9110 §15.5.6).
//
// handler() routes first and then runs the middleware around the chosen route's handler (or
// the Router's own 400/404/405), so middleware sees Request::route and params before it calls
// the next handler: a limiter's refusal is still labelled with the route it refused.
class Router {
 public:
  Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // route: registers `h` for `method` (e.g. "GET") and `pattern`. Throws std::invalid_argument
  // for a pattern that does not start with '/' or holds a malformed "{...}" segment.
  Router& route(std::string_view method, std::string_view pattern, Handler h);
  Router& get(std::string_view pattern, Handler h) { return route("GET", pattern, std::move(h)); }
  Router& post(std::string_view pattern, Handler h) { return route("POST", pattern, std::move(h)); }
  Router& put(std::string_view pattern, Handler h) { return route("PUT", pattern, std::move(h)); }
  Router& del(std::string_view pattern, Handler h) {
    return route("DELETE", pattern, std::move(h));
  }
  // use: adds a middleware around everything registered, before or after it.
  Router& use(Middleware m);

  // dispatch: routes one request (sets req.route and req.params) and runs its handler, without
  // the middleware.
  void dispatch(const Request& req, Response& res) const;
  // handler: the middleware chain around dispatch; what a ServerSession calls.
  const Handler& handler() const { return chain_; }

 private:
  struct Segment {
    std::string text;  // the literal (percent-decoded), or the parameter's name
    bool param = false;
  };
  struct Route {
    std::string method;
    std::string pattern;  // as registered: what Request::route shows
    std::vector<Segment> segments;
    Handler handler;
  };

  // resolve: sets req.route, req.params and the verdict invoke() acts on.
  void resolve(const Request& req) const;
  // invoke: runs the handler resolve() chose, or answers 400, 404 or 405.
  void invoke(const Request& req, Response& res) const;
  void method_not_allowed(const Request& req, Response& res) const;
  static bool match(const Route& r, const Request& req, bool escaped);
  void compose();

  std::vector<Route> routes_;
  std::vector<Middleware> middleware_;
  Handler chain_;
};

}  // namespace mpg::http
