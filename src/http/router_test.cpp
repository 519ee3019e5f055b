// router_test.cpp: Router: parameters, 404, 405 with Allow, HEAD served by GET, first match
// wins, middleware order, pattern validation, percent-decoding per segment, the route pattern
// middleware sees; through a ServerSession as a server would use it.
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
  EXPECT_EQ(request(r, "GET", "/kv/a%20b?x=1").body, "a b");  // decoded, query excluded
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

// RFC 3986 §2.1: the path is split on '/' first, then each segment decoded, so "%2F" is a byte
// of its segment, never a separator; parameters get the decoded bytes.
TEST(Router, SegmentsArePercentDecodedAfterTheSplit) {
  Router r;
  r.get("/kv/{key}", [](const Request& q, Response& res) { res.text(q.param("key")); });
  r.get("/two/{a}/{b}", [](const Request& q, Response& res) {
    res.text(std::string(q.param("a")) + "|" + std::string(q.param("b")));
  });
  EXPECT_EQ(request(r, "GET", "/kv/a%2Fb").body, "a/b");
  EXPECT_EQ(request(r, "GET", "/kv/a%2fb%20c").body, "a/b c");  // hex digits in either case
  EXPECT_EQ(request(r, "GET", "/kv/%25").body, "%");             // decoded once, not twice
  EXPECT_EQ(request(r, "GET", "/kv/%2541").body, "%41");
  // Two escaped parameters: the second decode must not move the first's bytes.
  EXPECT_EQ(request(r, "GET", "/two/a%20b/c%2Fd").body, "a b|c/d");
  EXPECT_EQ(request(r, "GET", "/two/plain/c%2Fd").body, "plain|c/d");
  EXPECT_EQ(request(r, "GET", "/two/a%2Fb").status, 404);  // one segment, not two
}

TEST(Router, LiteralsCompareDecoded) {
  Router r;
  r.get("/hello world", [](const Request&, Response& res) { res.text("space"); });
  r.get("/caf%C3%A9/{x}", [](const Request& q, Response& res) { res.text(q.param("x")); });
  r.get("/a%2Fb", [](const Request&, Response& res) { res.text("one segment"); });
  EXPECT_EQ(request(r, "GET", "/hello%20world").body, "space");
  EXPECT_EQ(request(r, "GET", "/%68ello%20world").body, "space");  // "%68" is "h"
  EXPECT_EQ(request(r, "GET", "/caf%c3%a9/1").body, "1");
  EXPECT_EQ(request(r, "GET", "/a%2Fb").body, "one segment");
  EXPECT_EQ(request(r, "GET", "/a/b").status, 404);  // two segments
  EXPECT_EQ(request(r, "GET", "/hello%20worl").status, 404);
  EXPECT_EQ(request(r, "GET", "/hello%20worldx").status, 404);
}

// Handlers still see the target and path as sent.
TEST(Router, RawTargetAndPathStayAsSent) {
  Router r;
  r.get("/kv/{key}", [](const Request& q, Response& res) {
    res.text(std::string(q.target) + " " + std::string(q.path) + " " + std::string(q.param("key")));
  });
  EXPECT_EQ(request(r, "GET", "/kv/a%2Fb?q=%41").body, "/kv/a%2Fb?q=%41 /kv/a%2Fb a/b");
}

// A '%' not followed by two HEXDIGs is not a URI (RFC 3986 §2.1): 400, but the request was framed
// fine, so the connection stays open. The query is not the router's: it is not checked.
TEST(Router, MalformedEscapesAre400AndKeepTheConnection) {
  Router r;
  r.get("/kv/{key}", [](const Request& q, Response& res) { res.text(q.param("key")); });
  r.get("/q", [](const Request&, Response& res) { res.text("q"); });
  for (std::string_view path : {"/kv/%G1", "/kv/%4", "/kv/a%", "/kv/%4G", "/nowhere/%zz", "/kv/%%41"}) {
    SCOPED_TRACE(path);
    test::Parsed p = request(r, "GET", path);
    EXPECT_EQ(p.status, 400);
    EXPECT_EQ(p.body, std::string(detail::kBadPercentEncoding.detail) + "\n");
    EXPECT_FALSE(p.closes());
  }
  EXPECT_EQ(request(r, "GET", "/q?x=%G1").status, 200);
  EXPECT_THROW(r.get("/bad%2", [](const Request&, Response&) {}), std::invalid_argument);
}

TEST(Router, EscapedPathWithWrongMethodIs405) {
  Router r;
  r.put("/kv/{key}", [](const Request&, Response& res) { res.text("put"); });
  test::Parsed p = request(r, "GET", "/kv/a%2Fb");
  EXPECT_EQ(p.status, 405);
  EXPECT_EQ(p.field("Allow"), "PUT");
}

// Request::route: the pattern (never the path), set before the middleware runs; "" when the
// Router answers itself.
TEST(Router, MiddlewareSeesTheMatchedPattern) {
  Router r;
  std::string seen;
  r.use([&seen](Handler next) -> Handler {
    return [&seen, next](const Request& q, Response& res) {
      seen = "[" + std::string(q.route) + "]";
      next(q, res);
      seen += "[" + std::string(q.route) + "]";
    };
  });
  auto ok = [](const Request& q, Response& res) { res.text(q.route); };
  r.get("/kv/{key}", ok).put("/kv/{key}", ok).get("/plaintext", ok);
  EXPECT_EQ(request(r, "GET", "/kv/alpha").body, "/kv/{key}");
  EXPECT_EQ(seen, "[/kv/{key}][/kv/{key}]");
  serve(r.handler(), "HEAD /kv/a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n");  // served by the GET route
  EXPECT_EQ(seen, "[/kv/{key}][/kv/{key}]");
  request(r, "GET", "/plaintext?x=1");
  EXPECT_EQ(seen, "[/plaintext][/plaintext]");
  EXPECT_EQ(request(r, "GET", "/nowhere").status, 404);
  EXPECT_EQ(seen, "[][]");
  EXPECT_EQ(request(r, "DELETE", "/kv/a").status, 405);
  EXPECT_EQ(seen, "[][]");
  EXPECT_EQ(request(r, "GET", "/kv/%G1").status, 400);
  EXPECT_EQ(seen, "[][]");
}

// The route and parameters do not leak from one request of a connection into the next.
TEST(Router, RouteIsResetBetweenRequests) {
  Router r;
  std::string seen;
  r.use([&seen](Handler next) -> Handler {
    return [&seen, next](const Request& q, Response& res) {
      next(q, res);
      seen += "[" + std::string(q.route) + "]";
    };
  });
  r.get("/kv/{key}", [](const Request& q, Response& res) { res.text(q.param("key")); });
  std::string out = serve(r.handler(), "GET /kv/a%20b HTTP/1.1\r\nHost: a\r\n\r\n"
                                       "GET /x HTTP/1.1\r\nHost: a\r\n\r\n").out;
  std::vector<test::Parsed> all = test::parse_responses(out);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].body, "a b");
  EXPECT_EQ(all[1].status, 404);
  EXPECT_EQ(seen, "[/kv/{key}][]");
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
