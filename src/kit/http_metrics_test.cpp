// http_metrics_test.cpp: the middleware's series: counts by code and method (unknown methods as
// OTHER, throws and bad statuses as 500), the latency histogram under an injected clock, the
// in-flight gauge, and the whole /metrics text after a few requests through real sessions.
#include "mpg/kit/http_metrics.hpp"

#include <gtest/gtest.h>

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
            "# HELP t_requests_total HTTP requests answered, by status code and method.\n"
            "# TYPE t_requests_total counter\n"
            "t_requests_total{code=\"200\",method=\"GET\"} 2\n"
            "t_requests_total{code=\"404\",method=\"GET\"} 1\n"
            "# HELP t_request_duration_seconds Time from the handler's start to its end, in "
            "seconds.\n"
            "# TYPE t_request_duration_seconds histogram\n"
            "t_request_duration_seconds_bucket{le=\"0.001\"} 2\n"
            "t_request_duration_seconds_bucket{le=\"0.01\"} 3\n"
            "t_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"
            "t_request_duration_seconds_sum 0.005\n"
            "t_request_duration_seconds_count 3\n"
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
  Family<Counter>& f = r.counter("http_requests_total", "", {"code", "method"});
  EXPECT_EQ(f.with({"500", "PUT"}).value(), 1u);
  EXPECT_EQ(f.with({"500", "POST"}).value(), 1u);
  EXPECT_EQ(f.with({"204", "OTHER"}).value(), 2u);
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
  Family<Counter>& f = r.counter("http_requests_total", "", {"code", "method"});
  EXPECT_EQ(f.with({"200", "GET"}).value(), std::uint64_t(kThreads / 2 * kPer));
  EXPECT_EQ(f.with({"200", "POST"}).value(), std::uint64_t(kThreads / 2 * kPer));
  EXPECT_EQ(
      r.histogram("http_request_duration_seconds", "", latency_buckets()).with().snapshot().count,
      std::uint64_t(kThreads * kPer));
  EXPECT_EQ(m.in_flight().value(), 0);
}

}  // namespace
}  // namespace mpg::kit
