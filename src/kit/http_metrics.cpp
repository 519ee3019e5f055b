// http_metrics.cpp: the request-recording middleware.
#include "mpg/kit/http_metrics.hpp"

#include <array>
#include <string>

namespace mpg::kit {

namespace {

// kMethods: the label values; the last, "OTHER", stands for every method not listed.
constexpr std::array<std::string_view, 10> kMethods = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "OTHER"};

std::size_t method_index(std::string_view m) {
  for (std::size_t i = 0; i + 1 < kMethods.size(); i++)
    if (m == kMethods[i]) return i;
  return kMethods.size() - 1;
}

}  // namespace

HttpMetrics::HttpMetrics(Registry& registry, HttpMetricsConfig config)
    : requests_(registry.counter(config.prefix + "requests_total",
                                 "HTTP requests answered, by status code and method.",
                                 {"code", "method"})),
      duration_(registry
                    .histogram(config.prefix + "request_duration_seconds",
                               "Time from the handler's start to its end, in seconds.",
                               config.buckets)
                    .with()),
      in_flight_(
          registry.gauge(config.prefix + "requests_in_flight", "HTTP requests being handled.")
              .with()),
      time_(std::move(config.time)),
      cache_(std::make_unique<std::atomic<Counter*>[]>(kMethods.size() * kCodes)) {}

HttpMetrics::~HttpMetrics() = default;

Counter& HttpMetrics::requests(std::string_view method, int code) {
  if (code < 200 || code > 599) code = 500;  // what the session sends instead
  std::size_t m = method_index(method);
  std::atomic<Counter*>& slot = cache_[m * kCodes + std::size_t(code - kMinCode)];
  // Acquire pairs with the release below: a thread that sees the pointer sees the series.
  Counter* c = slot.load(std::memory_order_acquire);
  if (!c) [[unlikely]] {
    // Racing threads get the same series from the family; storing it twice is harmless.
    c = &requests_.with({std::to_string(code), kMethods[m]});
    slot.store(c, std::memory_order_release);
  }
  return *c;
}

void HttpMetrics::record(std::string_view method, int code, Nanos duration) {
  requests(method, code).inc();
  duration_.observe(std::chrono::duration<double>(duration).count());
}

http::Middleware HttpMetrics::middleware() {
  return [this](http::Handler next) -> http::Handler {
    return [this, next = std::move(next)](const http::Request& req, http::Response& res) {
      in_flight_.inc();
      TimePoint start = time_.now();
      try {
        next(req, res);
      } catch (...) {
        in_flight_.dec();
        record(req.method, 500, time_.now() - start);
        throw;
      }
      in_flight_.dec();
      record(req.method, res.status, time_.now() - start);
    };
  };
}

}  // namespace mpg::kit
