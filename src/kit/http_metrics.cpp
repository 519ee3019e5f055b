// http_metrics.cpp: the request-recording middleware.
//
// Finding a request's series without a lock: the table is open-addressed with linear probing,
// each slot an atomic pointer to an immutable Series. A reader hashes (route bytes, method,
// code), probes from there and compares; an empty slot means the series is not there yet, and
// the writer path (one thread at a time, under mu_) probes again and publishes a new Series
// into the first empty slot with a release store. Slots are never emptied or reused, so a
// reader that saw a pointer may keep it. The route is compared by content, not by address: a
// Router's patterns live as long as it does, but a label must not depend on where a string sits.
#include "mpg/kit/http_metrics.hpp"

#include <array>
#include <mutex>
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

// series_hash: FNV-1a over the route's bytes, then the method and code mixed in (a route is a
// few dozen bytes: a few nanoseconds).
std::uint64_t series_hash(std::string_view route, std::size_t method, int code) {
  std::uint64_t h = 14695981039346656037ull;
  for (char c : route) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  h = (h ^ (std::uint64_t(method) << 16 | std::uint64_t(code))) * 1099511628211ull;
  return h ^ (h >> 29);
}

bool same(const auto& s, std::uint64_t hash, std::string_view route, std::size_t method,
          int code) {
  return s.hash == hash && s.method == method && s.code == code && s.route == route;
}

}  // namespace

HttpMetrics::HttpMetrics(Registry& registry, HttpMetricsConfig config)
    : requests_(registry.counter(config.prefix + "requests_total",
                                 "HTTP requests answered, by status code, method and route.",
                                 {"code", "method", "route"})),
      duration_(registry.histogram(config.prefix + "request_duration_seconds",
                                   "Time from the handler's start to its end, in seconds.",
                                   config.buckets, {"route"})),
      in_flight_(
          registry.gauge(config.prefix + "requests_in_flight", "HTTP requests being handled.")
              .with()),
      time_(std::move(config.time)),
      unmatched_(std::move(config.unmatched_route)),
      table_(std::make_unique<std::atomic<Series*>[]>(kSlots)) {}

HttpMetrics::~HttpMetrics() = default;

HttpMetrics::Series& HttpMetrics::series(std::string_view route, std::size_t method, int code) {
  const std::uint64_t hash = series_hash(route, method, code);
  for (std::size_t i = 0; i < kSlots; i++) {
    // Acquire pairs with the release in add_series: a thread that sees the pointer sees the
    // Series it points to.
    Series* s = table_[(hash + i) & (kSlots - 1)].load(std::memory_order_acquire);
    if (!s) break;
    if (same(*s, hash, route, method, code)) return *s;
  }
  return add_series(hash, route, method, code);
}

HttpMetrics::Series& HttpMetrics::add_series(std::uint64_t hash, std::string_view route,
                                             std::size_t method, int code) {
  std::lock_guard<mpg::detail::Lock> g(mu_);
  std::atomic<Series*>* free_slot = nullptr;
  for (std::size_t i = 0; i < kSlots; i++) {  // another thread may have added it meanwhile
    std::atomic<Series*>& slot = table_[(hash + i) & (kSlots - 1)];
    Series* s = slot.load(std::memory_order_relaxed);  // only this lock's holders store
    if (!s) {
      free_slot = &slot;
      break;
    }
    if (same(*s, hash, route, method, code)) return *s;
  }
  if (!free_slot) {  // the table is full: what did not fit is found here, under the lock
    for (const std::unique_ptr<Series>& s : overflow_)
      if (same(*s, hash, route, method, code)) return *s;
  }
  // The families' with() take their own lock and return series that live as long as they do.
  auto s = std::make_unique<Series>(Series{
      hash, std::string(route), method, code,
      &requests_.with({std::to_string(code), kMethods[method], route}), &duration_.with({route})});
  Series& made = *s;
  if (free_slot) {
    owned_.push_back(std::move(s));
    free_slot->store(&made, std::memory_order_release);
  } else {
    overflow_.push_back(std::move(s));
  }
  return made;
}

void HttpMetrics::record(std::string_view method, int code, Nanos duration,
                         std::string_view route) {
  if (code < 200 || code > 599) code = 500;  // what the session sends instead
  Series& s = series(route.empty() ? std::string_view(unmatched_) : route, method_index(method),
                     code);
  s.requests->inc();
  s.duration->observe(std::chrono::duration<double>(duration).count());
}

http::Middleware HttpMetrics::middleware() {
  return [this](http::Handler next) -> http::Handler {
    return [this, next = std::move(next)](const http::Request& req, http::Response& res) {
      in_flight_.inc();
      TimePoint start = time_.now();
      // The route is read after the handler: a Router inside this middleware (rather than
      // around it) sets it only when it routes.
      try {
        next(req, res);
      } catch (...) {
        in_flight_.dec();
        record(req.method, 500, time_.now() - start, req.route);
        throw;
      }
      in_flight_.dec();
      record(req.method, res.status, time_.now() - start, req.route);
    };
  };
}

}  // namespace mpg::kit
