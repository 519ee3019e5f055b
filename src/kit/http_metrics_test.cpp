// http_metrics_test.cpp: the middleware's series: counts by code, method and route (unknown
// methods as OTHER, throws and bad statuses as 500, the Router's pattern as the route, never the
// path), the latency histogram under an injected clock, the in-flight gauge, and the whole
// /metrics text after a few requests through real sessions.
#include "mpg/kit/http_metrics.hpp"

#include <gtest/gtest.h>

#include "mpg/http/router.hpp"

#include <stdexcept>
#include <thread>
#include <vector>

#include "kit/test_support.hpp"

namespace mpg::kit {
namespace {

using std::chrono::milliseconds;

TEST(HttpMetrics, GoldenTextAfterAFewRequests) {
  ManualClock clock;
  Registry r;
  HttpMetrics m(r, {.prefix = "t_", .buckets = {0.001, 0.01}, .time = clock.source()});
  double seen_in_flight = -1;
  http::Handler h = m.middleware()([&](const http::Request& req, http::Response& res) {
    seen_in_flight = m.in_flight().value();
    clock.advance(milliseconds(req.path == "/slow" ? 5 : 0));
    if (req.path == "/missing") return res.text("no", 404);
    res.text("ok");
  });
  EXPECT_EQ(test::serve_get(h, "/").status, 200);
  EXPECT_EQ(seen_in_flight, 1);
  test::serve_get(h, "/slow");
  test::serve_get(h, "/missing");
  EXPECT_EQ(m.in_flight().value(), 0);
  EXPECT_EQ(r.render(),
            "# HELP t_requests_total HTTP requests answered, by status code, method and route.\n"
            "# TYPE t_requests_total counter\n"
            "t_requests_total{code=\"200\",method=\"GET\",route=\"unmatched\"} 2\n"
            "t_requests_total{code=\"404\",method=\"GET\",route=\"unmatched\"} 1\n"
            "# HELP t_request_duration_seconds Time from the handler's start to its end, in "
            "seconds.\n"
            "# TYPE t_request_duration_seconds histogram\n"
            "t_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.001\"} 2\n"
            "t_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.01\"} 3\n"
            "t_request_duration_seconds_bucket{route=\"unmatched\",le=\"+Inf\"} 3\n"
            "t_request_duration_seconds_sum{route=\"unmatched\"} 0.005\n"
            "t_request_duration_seconds_count{route=\"unmatched\"} 3\n"
            "# HELP t_requests_in_flight HTTP requests being handled.\n"
            "# TYPE t_requests_in_flight gauge\n"
            "t_requests_in_flight 0\n");
}

TEST(HttpMetrics, ThrowsAndInvalidStatusesCountAs500UnknownMethodsAsOther) {
  Registry r;
  HttpMetrics m(r);
  http::Handler h = m.middleware()([](const http::Request& req, http::Response& res) {
    if (req.method == "PUT") throw std::runtime_error("boom");
    res.status = req.method == "POST" ? 42 : 204;
  });
  EXPECT_THROW(test::call(h, "", "PUT"), std::runtime_error);
  test::call(h, "", "POST");
  test::call(h, "", "BREW");
  test::call(h, "", "FROB");
  Family<Counter>& f = r.counter("http_requests_total", "", {"code", "method", "route"});
  EXPECT_EQ(f.with({"500", "PUT", "unmatched"}).value(), 1u);
  EXPECT_EQ(f.with({"500", "POST", "unmatched"}).value(), 1u);
  EXPECT_EQ(f.with({"204", "OTHER", "unmatched"}).value(), 2u);
  EXPECT_EQ(m.in_flight().value(), 0);
}

TEST(HttpMetrics, ConcurrentRequestsAreAllCounted) {
  Registry r;
  HttpMetrics m(r);
  http::Handler h = m.middleware()(test::ok());
  constexpr int kThreads = 8, kPer = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPer; i++) test::call(h, "", t % 2 ? "GET" : "POST");
    });
  for (std::thread& t : threads) t.join();
  Family<Counter>& f = r.counter("http_requests_total", "", {"code", "method", "route"});
  EXPECT_EQ(f.with({"200", "GET", "unmatched"}).value(), std::uint64_t(kThreads / 2 * kPer));
  EXPECT_EQ(f.with({"200", "POST", "unmatched"}).value(), std::uint64_t(kThreads / 2 * kPer));
  EXPECT_EQ(r.histogram("http_request_duration_seconds", "", latency_buckets(), {"route"})
                .with({"unmatched"})
                .snapshot()
                .count,
            std::uint64_t(kThreads * kPer));
  EXPECT_EQ(m.in_flight().value(), 0);
}

// Behind a Router the label is the pattern that matched, never the path: two keys are one
// series. What the Router answers itself (404, 405, a malformed escape's 400) is "unmatched".
TEST(HttpMetrics, RouterRequestsAreLabelledByPattern) {
  ManualClock clock;  // stands still: the sums are 0
  Registry r;
  HttpMetrics m(r, {.buckets = {1}, .time = clock.source()});
  http::Router router;
  router.use(m.middleware());
  router.get("/kv/{key}", [](const http::Request&, http::Response& res) { res.text("v"); });
  router.put("/kv/{key}", [](const http::Request&, http::Response& res) { res.status = 204; });
  for (std::string_view target : {"/kv/a", "/kv/b", "/kv/c%2Fd", "/nowhere", "/kv/%G1"})
    test::serve_get(router.handler(), target);
  http::test::serve(router.handler(), "PUT /kv/a HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  http::test::serve(router.handler(), "POST /kv/a HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(r.render(),
            "# HELP http_requests_total HTTP requests answered, by status code, method and route.\n"
            "# TYPE http_requests_total counter\n"
            "http_requests_total{code=\"200\",method=\"GET\",route=\"/kv/{key}\"} 3\n"
            "http_requests_total{code=\"204\",method=\"PUT\",route=\"/kv/{key}\"} 1\n"
            "http_requests_total{code=\"400\",method=\"GET\",route=\"unmatched\"} 1\n"
            "http_requests_total{code=\"404\",method=\"GET\",route=\"unmatched\"} 1\n"
            "http_requests_total{code=\"405\",method=\"POST\",route=\"unmatched\"} 1\n"
            "# HELP http_request_duration_seconds Time from the handler's start to its end, in "
            "seconds.\n"
            "# TYPE http_request_duration_seconds histogram\n"
            "http_request_duration_seconds_bucket{route=\"/kv/{key}\",le=\"1\"} 4\n"
            "http_request_duration_seconds_bucket{route=\"/kv/{key}\",le=\"+Inf\"} 4\n"
            "http_request_duration_seconds_sum{route=\"/kv/{key}\"} 0\n"
            "http_request_duration_seconds_count{route=\"/kv/{key}\"} 4\n"
            "http_request_duration_seconds_bucket{route=\"unmatched\",le=\"1\"} 3\n"
            "http_request_duration_seconds_bucket{route=\"unmatched\",le=\"+Inf\"} 3\n"
            "http_request_duration_seconds_sum{route=\"unmatched\"} 0\n"
            "http_request_duration_seconds_count{route=\"unmatched\"} 3\n"
            "# HELP http_requests_in_flight HTTP requests being handled.\n"
            "# TYPE http_requests_in_flight gauge\n"
            "http_requests_in_flight 0\n");
}

// The Router routes before its middleware runs, so a refusal from a middleware inside the
// metrics (a limiter's 429) still carries the route it refused.
TEST(HttpMetrics, RefusalsInsideTheMetricsKeepTheirRoute) {
  Registry r;
  HttpMetrics m(r, {.unmatched_route = "none"});
  http::Router router;
  router.use(m.middleware());
  router.use([](http::Handler next) -> http::Handler {
    return [next](const http::Request& req, http::Response& res) {
      if (req.param("key") == "busy") return res.text("slow down\n", 429);
      next(req, res);
    };
  });
  router.get("/kv/{key}", [](const http::Request&, http::Response& res) { res.text("v"); });
  EXPECT_EQ(test::serve_get(router.handler(), "/kv/busy").status, 429);
  EXPECT_EQ(test::serve_get(router.handler(), "/other").status, 404);
  Family<Counter>& f = r.counter("http_requests_total", "", {"code", "method", "route"});
  EXPECT_EQ(f.with({"429", "GET", "/kv/{key}"}).value(), 1u);
  EXPECT_EQ(f.with({"404", "GET", "none"}).value(), 1u);
}

// More distinct series than the lock-free table holds: the rest are found under the lock, and
// every request is still counted once, in its own series, from several threads.
TEST(HttpMetrics, SeriesBeyondTheTableAreCountedToo) {
  Registry r;
  HttpMetrics m(r, {.buckets = {1}});
  constexpr int kRoutes = 1500, kThreads = 4;
  std::vector<std::string> routes;
  for (int i = 0; i < kRoutes; i++) routes.push_back("/r" + std::to_string(i));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++)
    threads.emplace_back([&] {
      for (int round = 0; round < 2; round++)
        for (const std::string& route : routes) m.record("GET", 200, Nanos(0), route);
    });
  for (std::thread& t : threads) t.join();
  Family<Counter>& f = r.counter("http_requests_total", "", {"code", "method", "route"});
  Family<Histogram>& d = r.histogram("http_request_duration_seconds", "", {1}, {"route"});
  for (const std::string& route : routes) {
    ASSERT_EQ(f.with({"200", "GET", route}).value(), std::uint64_t(2 * kThreads)) << route;
    ASSERT_EQ(d.with({route}).snapshot().count, std::uint64_t(2 * kThreads)) << route;
  }
}

}  // namespace
}  // namespace mpg::kit
