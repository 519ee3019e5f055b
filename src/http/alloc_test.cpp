// alloc_test.cpp: the steady state of a keep-alive connection allocates nothing per request:
// the session reuses its Request, Response, buffers and the transport's output string. Counted
// by replacing the global operator new in this test binary (not under a sanitizer, which
// supplies its own).
#include <gtest/gtest.h>

#include "http/alloc_counter.hpp"
#include "http/test_support.hpp"
#include "mpg/http/router.hpp"

namespace mpg::http {
namespace {

// kWrkRequest: the request wrk sends in the TechEmpower plaintext test.
constexpr std::string_view kWrkRequest =
    "GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\nAccept: text/plain,text/html;q=0.9,"
    "application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\nConnection: keep-alive\r\n\r\n";

// allocations_per_round: allocations during `rounds` calls of on_data(input), after a warm-up.
long allocations_per_round(const Handler& h, std::string_view input, int rounds) {
  ServerSession s(h);
  std::string out;
  for (int i = 0; i < 8; ++i) {  // warm-up: buffers reach their working size
    out.clear();
    s.on_data(input, out);
  }
  long before = test::allocations.load();
  for (int i = 0; i < rounds; ++i) {
    out.clear();
    if (s.on_data(input, out) != SessionStatus::kKeepReading) ADD_FAILURE();
  }
  return test::allocations.load() - before;
}

class Allocations : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::kCountsAllocations) GTEST_SKIP() << "a sanitizer replaces operator new";
  }
};

TEST_F(Allocations, CounterSeesAllocations) {
  long before = test::allocations.load();
  auto* p = new std::string(100, 'x');  // guards against a counter that never counts
  delete p;
  EXPECT_GE(test::allocations.load() - before, 1);
}

TEST_F(Allocations, PlaintextRequestAllocatesNothing) {
  Router r;
  r.get("/plaintext", [](const Request&, Response& res) { res.text("Hello, World!"); });
  EXPECT_EQ(allocations_per_round(r.handler(), kWrkRequest, 1000), 0);
}

TEST_F(Allocations, SixteenPipelinedRequestsAllocateNothing) {
  Router r;
  r.get("/plaintext", [](const Request&, Response& res) { res.text("Hello, World!"); });
  std::string sixteen;
  for (int i = 0; i < 16; ++i) sixteen += kWrkRequest;
  EXPECT_EQ(allocations_per_round(r.handler(), sixteen, 100), 0);
}

TEST_F(Allocations, RouteParametersAndSmallBodiesAllocateNothing) {
  Router r;
  r.put("/kv/{key}", [](const Request& q, Response& res) {
    res.set_header("X-Key", q.param("key"));
    res.text(q.body);
  });
  std::string in = "PUT /kv/alpha HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nvalue";
  EXPECT_EQ(allocations_per_round(r.handler(), in, 1000), 0);
}

// Percent-decoded parameters go to a buffer the Request keeps, so escapes allocate nothing
// either once it has grown; the route pattern is a view into the Router.
TEST_F(Allocations, EscapedParametersAndTheRouteAllocateNothing) {
  Router r;
  r.get("/kv/{key}/{sub}", [](const Request& q, Response& res) {
    res.set_header("X-Route", q.route);
    res.text(q.param("key"));
    res.body.append(q.param("sub"));
  });
  std::string in = "GET /kv/a%2Fb%20c/d%41 HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(allocations_per_round(r.handler(), in, 1000), 0);
}

// A streamed response: the pieces' ends go in a vector the Response keeps.
TEST_F(Allocations, ChunkedResponseAllocatesNothing) {
  Router r;
  r.get("/stream", [](const Request&, Response& res) {
    res.set_content_type("text/plain");
    for (int i = 0; i < 8; ++i) res.write_chunk("piece of a streamed body\n");
  });
  std::string in = "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(allocations_per_round(r.handler(), in, 1000), 0);
}

// A 1 MiB body, copied in pieces and echoed, must not stay with the connection: the session
// frees buffers above Limits::retain_bytes once the request is answered.
TEST_F(Allocations, BigBuffersAreReleasedAfterTheRequest) {
  const Handler h = [](const Request& q, Response& res) { res.text(q.body); };
  ServerSession s(h);
  std::string out;
  s.on_data("GET / HTTP/1.1\r\nHost: a\r\n\r\n", out);  // warm-up
  std::string().swap(out);
  const std::string in = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n" +
                         std::string(1024 * 1024, 'b');
  const long base = test::live_bytes.load();
  long peak = 0;
  for (std::size_t at = 0; at < in.size(); at += 65536) {
    s.on_data(std::string_view(in).substr(at, 65536), out);
    peak = std::max(peak, test::live_bytes.load() - base);
  }
  EXPECT_NE(out.find("200 OK"), std::string::npos);
  std::string().swap(out);
  EXPECT_GT(peak, 2 * 1024 * 1024);  // the body buffer and the response body were held
  EXPECT_LT(test::live_bytes.load() - base, long(4 * Limits{}.retain_bytes));
}

// A body streamed in 100,000 one-byte pieces leaves a list of 100,000 ends: it goes too.
TEST_F(Allocations, ManyPiecesAreReleasedAfterTheRequest) {
  const Handler h = [](const Request& q, Response& res) {
    for (int i = 0, n = q.path == "/big" ? 100000 : 1; i < n; ++i) res.write_chunk("x");
  };
  ServerSession s(h);
  std::string out;
  s.on_data("GET / HTTP/1.1\r\nHost: a\r\n\r\n", out);  // warm-up
  std::string().swap(out);
  const long base = test::live_bytes.load();
  s.on_data("GET /big HTTP/1.1\r\nHost: a\r\n\r\n", out);
  EXPECT_NE(out.find("\r\n0\r\n\r\n"), std::string::npos);
  std::string().swap(out);
  EXPECT_LT(test::live_bytes.load() - base, long(4 * Limits{}.retain_bytes));
}

}  // namespace
}  // namespace mpg::http
