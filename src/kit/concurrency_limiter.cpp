// concurrency_limiter.cpp: the 503 middleware and its metrics.
#include "mpg/kit/concurrency_limiter.hpp"

#include <string>

#include "mpg/kit/refusal.hpp"
#include "mpg/kit/registry.hpp"

namespace mpg::kit {

http::Middleware ConcurrencyLimiter::middleware() {
  return [this](http::Handler next) -> http::Handler {
    return [this, next = std::move(next)](const http::Request& req, http::Response& res) {
      Permit p = try_acquire();
      if (!p) return refuse(res, 503, config_.retry_after, "too many requests in flight\n");
      next(req, res);  // the permit is released however next ends, throwing included
    };
  };
}

void ConcurrencyLimiter::register_metrics(Registry& r, std::string_view prefix) const {
  std::string p(prefix);
  r.gauge_fn(p + "concurrency_in_flight", "Requests in flight under the concurrency limiter.",
             [this] { return double(in_flight()); });
  r.gauge_fn(p + "concurrency_limit", "The concurrency limiter's limit.",
             [this] { return double(limit()); });
  r.counter_fn(p + "concurrency_refused_total", "Requests refused with 503 at the limit.",
               [this] { return double(refused()); });
}

}  // namespace mpg::kit
