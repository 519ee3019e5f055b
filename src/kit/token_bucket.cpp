// token_bucket.cpp: the bucket shape's validation and the token count.
#include "mpg/kit/token_bucket.hpp"

#include <cmath>
#include <stdexcept>

namespace mpg::kit {

BucketMath::BucketMath(Rate r) {
  // NaN fails both comparisons, so it is refused too.
  // At most one token a nanosecond; at least one every 11.6 days, so one token's interval
  // (at most 1e15 ns) cannot overflow the arithmetic.
  if (!(r.per_second >= 1e-6 && r.per_second <= 1e9))
    throw std::invalid_argument("kit::Rate: per_second must be in [1e-6, 1e9]");
  if (!(r.burst >= 1 && r.burst <= 1e12))
    throw std::invalid_argument("kit::Rate: burst must be in [1, 1e12]");
  interval_ = std::llround(1e9 / r.per_second);
  double capacity = r.burst * double(interval_);
  // A bucket deeper than ~30 years cannot be told from an unlimited one; clamp so that
  // full_at arithmetic stays far from overflow.
  capacity_ = capacity > 1e18 ? std::int64_t(1e18) : std::llround(capacity);
}

double BucketMath::tokens(std::int64_t full_at, std::int64_t now) const {
  std::int64_t debt = full_at > now ? full_at - now : 0;
  return double(capacity_ - debt) / double(interval_);
}

}  // namespace mpg::kit
