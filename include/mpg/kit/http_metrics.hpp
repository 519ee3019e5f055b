// http_metrics.hpp: the middleware that records every request: count by status code and method,
// latency histogram, requests in flight.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mpg/http/handler.hpp"
#include "mpg/kit/metrics.hpp"
#include "mpg/kit/registry.hpp"
#include "mpg/kit/time.hpp"

namespace mpg::kit {

// HttpMetricsConfig: the series' names are <prefix>requests_total{code,method},
// <prefix>request_duration_seconds and <prefix>requests_in_flight.
struct HttpMetricsConfig {
  std::string prefix = "http_";
  std::vector<double> buckets = latency_buckets();
  TimeSource time;
};

// HttpMetrics: records each request its middleware wraps. The hot path takes no lock: the
// (method, code) series is found in a table of atomic pointers filled on first use, then it is
// one striped add for the count, one for the histogram, two for the in-flight gauge, and two
// clock reads. Methods outside RFC 9110's eight and PATCH count as "OTHER", so a client cannot
// grow the series without bound. A handler that throws counts as 500, as the session answers;
// so does a status outside 200..599. Thread-safe; must outlive the handlers it wraps, and its
// registry must outlive it.
class HttpMetrics {
 public:
  explicit HttpMetrics(Registry& registry, HttpMetricsConfig config = {});
  ~HttpMetrics();
  HttpMetrics(const HttpMetrics&) = delete;
  HttpMetrics& operator=(const HttpMetrics&) = delete;

  // middleware: put it outermost, so that the refusals of the limiters inside it are counted.
  http::Middleware middleware();
  // record: one finished request, as the middleware records it.
  void record(std::string_view method, int code, Nanos duration);
  Gauge& in_flight() { return in_flight_; }

 private:
  static constexpr int kMinCode = 100, kCodes = 500;  // 100..599
  Counter& requests(std::string_view method, int code);

  Family<Counter>& requests_;
  Histogram& duration_;
  Gauge& in_flight_;
  TimeSource time_;
  std::unique_ptr<std::atomic<Counter*>[]> cache_;  // [method index][code - kMinCode]
};

}  // namespace mpg::kit
