// router_test.cpp: Router: parameters, 404, 405 with Allow, HEAD served by GET, first match
// wins, middleware order, pattern validation; through a ServerSession as a server would use it.
#include "mpg/http/router.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "http/test_support.hpp"

namespace mpg::http {
namespace {

using test::only_response;
using test::serve;

test::Parsed request(const Router& r, std::string_view method, std::string_view target) {
  std::string in = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: a\r\n\r\n";
  return only_response(serve(r.handler(), in).out);
}

TEST(Router, ParametersAreCapturedFromTheirSegments) {
  Router r;
  r.get("/kv/{key}", [](const Request& q, Response& res) { res.text(q.param("key")); });
  r.get("/users/{id}/posts/{post}", [](const Request& q, Response& res) {
    res.text(std::string(q.param("id")) + "," + std::string(q.param("post")) + "," +
             std::string(q.param("missing")));
  });
  EXPECT_EQ(request(r, "GET", "/kv/alpha").body, "alpha");
  EXPECT_EQ(request(r, "GET", "/kv/a%20b?x=1").body, "a%20b");  // raw, query excluded
  EXPECT_EQ(request(r, "GET", "/users/7/posts/42").body, "7,42,");
}

TEST(Router, ParameterMatchesExactlyOneNonEmptySegment) {
  Router r;
  r.get("/kv/{key}", [](const Request&, Response& res) { res.text("hit"); });
  EXPECT_EQ(request(r, "GET", "/kv/").status, 404);
  EXPECT_EQ(request(r, "GET", "/kv").status, 404);
  EXPECT_EQ(request(r, "GET", "/kv/a/b").status, 404);
  EXPECT_EQ(request(r, "GET", "/kv/a").status, 200);
}

TEST(Router, LiteralsMatchExactlyIncludingTrailingSlash) {
  Router r;
  r.get("/", [](const Request&, Response& res) { res.text("root"); });
  r.get("/a/", [](const Request&, Response& res) { res.text("a-slash"); });
  EXPECT_EQ(request(r, "GET", "/").body, "root");
  EXPECT_EQ(request(r, "GET", "/a/").body, "a-slash");
  EXPECT_EQ(request(r, "GET", "/a").status, 404);
  EXPECT_EQ(request(r, "GET", "/A/").status, 404);
}

TEST(Router, UnknownPathIs404) {
  Router r;
  r.get("/x", [](const Request&, Response& res) { res.text("x"); });
  test::Parsed p = request(r, "GET", "/y");
  EXPECT_EQ(p.status, 404);
  EXPECT_FALSE(p.closes());
}

TEST(Router, WrongMethodIs405WithAllow) {
  Router r;
  auto ok = [](const Request&, Response& res) { res.text("ok"); };
  r.get("/kv/{key}", ok).put("/kv/{key}", ok).del("/kv/{key}", ok).put("/kv/{k2}", ok);
  r.post("/other", ok);
  test::Parsed p = request(r, "POST", "/kv/a");
  EXPECT_EQ(p.status, 405);
  EXPECT_EQ(p.field("Allow"), "GET, PUT, DELETE, HEAD");
  EXPECT_EQ(request(r, "GET", "/other").field("Allow"), "POST");
}

TEST(Router, HeadIsServedByGetUnlessItHasItsOwnRoute) {
  Router r;
  r.get("/g", [](const Request& q, Response& res) { res.text(std::string(q.method)); });
  r.get("/h", [](const Request&, Response& res) { res.text("get"); });
  r.route("HEAD", "/h", [](const Request&, Response& res) { res.text("own head"); });
  std::string out = serve(r.handler(), "HEAD /g HTTP/1.1\r\nHost: a\r\n\r\n").out;
  EXPECT_NE(out.find("\r\nContent-Length: 4\r\n"), std::string::npos) << out;  // "HEAD"
  out = serve(r.handler(), "HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n").out;
  EXPECT_NE(out.find("\r\nContent-Length: 8\r\n"), std::string::npos) << out;  // "own head"
}

TEST(Router, FirstRegisteredRouteWins) {
  Router r;
  r.get("/kv/special", [](const Request&, Response& res) { res.text("literal"); });
  r.get("/kv/{key}", [](const Request&, Response& res) { res.text("param"); });
  EXPECT_EQ(request(r, "GET", "/kv/special").body, "literal");
  EXPECT_EQ(request(r, "GET", "/kv/other").body, "param");
}

TEST(Router, MiddlewareRunsInRegistrationOrderAroundEverything) {
  Router r;
  std::string trace;
  auto tag = [&trace](std::string name) {
    return [&trace, name](Handler next) -> Handler {
      return [&trace, name, next](const Request& q, Response& res) {
        trace += name + "<";
        next(q, res);
        trace += ">" + name;
      };
    };
  };
  r.use(tag("a"));
  r.get("/x", [&trace](const Request&, Response& res) {
    trace += "h";
    res.text("x");
  });
  r.use(tag("b"));  // registered after the route: still wraps it
  request(r, "GET", "/x");
  EXPECT_EQ(trace, "a<b<h>b>a");
  trace.clear();
  EXPECT_EQ(request(r, "GET", "/nowhere").status, 404);  // middleware sees 404s too
  EXPECT_EQ(trace, "a<b<>b>a");
}

TEST(Router, MiddlewareCanAnswerWithoutCallingNext) {
  Router r;
  r.get("/x", [](const Request&, Response& res) { res.text("x"); });
  r.use([](Handler next) -> Handler {
    return [next](const Request& q, Response& res) {
      if (q.header("Authorization").empty()) return res.text("no\n", 401);
      next(q, res);
    };
  });
  EXPECT_EQ(request(r, "GET", "/x").status, 401);
}

TEST(Router, MalformedPatternsAreRejected) {
  Router r;
  auto h = [](const Request&, Response&) {};
  EXPECT_THROW(r.get("kv/{key}", h), std::invalid_argument);
  EXPECT_THROW(r.get("/kv/{}", h), std::invalid_argument);
  EXPECT_THROW(r.get("/kv/x{key}", h), std::invalid_argument);
  EXPECT_THROW(r.get("/kv/{key", h), std::invalid_argument);
  EXPECT_THROW(r.get("/kv/{a{b}}", h), std::invalid_argument);
  EXPECT_THROW(r.route("G T", "/x", h), std::invalid_argument);
  EXPECT_NO_THROW(r.get("/kv/{key}/", h));
}

TEST(Router, SessionTakesARouterDirectly) {
  Router r;
  r.get("/x", [](const Request&, Response& res) { res.text("x"); });
  ServerSession s(r);
  std::string out;
  s.on_data("GET /x HTTP/1.1\r\nHost: a\r\n\r\n", out);
  EXPECT_EQ(only_response(out).body, "x");
}

}  // namespace
}  // namespace mpg::http
