// http_metrics.hpp: the middleware that records every request: count by status code, method and
// route, latency histogram by route, requests in flight.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mpg/http/handler.hpp"
#include "mpg/kit/metrics.hpp"
#include "mpg/kit/registry.hpp"
#include "mpg/kit/time.hpp"

namespace mpg::kit {

// HttpMetricsConfig: the series' names are <prefix>requests_total{code,method,route},
// <prefix>request_duration_seconds{route} and <prefix>requests_in_flight.
struct HttpMetricsConfig {
  std::string prefix = "http_";
  std::vector<double> buckets = latency_buckets();
  TimeSource time;
  // unmatched_route: the route label of a request no route's handler served (the Router's own
  // 404, 405 and 400, or a handler that is not a Router's); patterns start with '/', so this
  // cannot collide with one.
  std::string unmatched_route = "unmatched";
};

// HttpMetrics: records each request its middleware wraps. The route label is the pattern the
// Router matched (Request::route, e.g. "/kv/{key}"), never the path, so the series are bounded
// by the routes, the ten methods and the codes. The hot path takes no lock: the (route, method,
// code) series is found in an open-addressing table of atomic pointers filled on first use (a
// hash of the route's bytes, then one compare), then it is one striped add for the count, one
// for the histogram, two for the in-flight gauge, and two clock reads. Methods outside RFC
// 9110's eight and PATCH count as "OTHER", so a client cannot grow the series without bound. A
// handler that throws counts as 500, as the session answers; so does a status outside 200..599.
// Thread-safe; must outlive the handlers it wraps, and its registry must outlive it.
class HttpMetrics {
 public:
  explicit HttpMetrics(Registry& registry, HttpMetricsConfig config = {});
  ~HttpMetrics();
  HttpMetrics(const HttpMetrics&) = delete;
  HttpMetrics& operator=(const HttpMetrics&) = delete;

  // middleware: put it outermost, so that the refusals of the limiters inside it are counted.
  http::Middleware middleware();
  // record: one finished request, as the middleware records it; `route` is Request::route
  // ("" counts as the unmatched route).
  void record(std::string_view method, int code, Nanos duration, std::string_view route = {});
  Gauge& in_flight() { return in_flight_; }

 private:
  // Series: what one (route, method, code) records into; made on first use, never freed
  // before the HttpMetrics.
  struct Series {
    std::uint64_t hash;
    std::string route;
    std::size_t method;  // index into the method labels
    int code;
    Counter* requests;
    Histogram* duration;
  };
  // kSlots: the lock-free table's size (a power of two). A Router's routes times the methods
  // and codes each sees stay far below it; past it, recording takes a lock (overflow_).
  static constexpr std::size_t kSlots = 1024;
  Series& series(std::string_view route, std::size_t method, int code);
  Series& add_series(std::uint64_t hash, std::string_view route, std::size_t method, int code);

  Family<Counter>& requests_;
  Family<Histogram>& duration_;
  Gauge& in_flight_;
  TimeSource time_;
  std::string unmatched_;
  std::unique_ptr<std::atomic<Series*>[]> table_;  // kSlots, linear probing; null: free
  mpg::detail::Lock mu_;                           // serializes add_series
  std::vector<std::unique_ptr<Series>> owned_;     // the table's Series; guarded by mu_
  std::vector<std::unique_ptr<Series>> overflow_;  // those past a full table; guarded by mu_
};

}  // namespace mpg::kit
