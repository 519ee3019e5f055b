// token_bucket.hpp: a lock-free token bucket (one atomic word) and the arithmetic it shares with
// the per-client table (rate_limiter.hpp).
#pragma once
#include <atomic>
#include <cstdint>

#include "mpg/kit/time.hpp"

namespace mpg::kit {

// Rate: a token bucket's shape: tokens refill continuously at `per_second`, up to `burst`.
struct Rate {
  double per_second = 0;  // refill rate; 0 turns the limit off
  double burst = 1;       // what a full bucket holds: the largest burst admitted at once (>= 1)
  bool enabled() const { return per_second > 0; }
};

// Decision: a limiter's verdict; when refused, `wait` is how long until it would be admitted.
struct Decision {
  bool allowed = true;
  Nanos wait{0};
};

// BucketMath: the token bucket written as one number, `full_at`: the time at which the bucket
// will be full again (the "theoretical arrival time" of GCRA, ITU-T I.371). Tokens available at
// `now` are burst - (full_at - now) / interval when full_at > now, else burst; taking n tokens
// pushes full_at to max(full_at, now) + n * interval, and is allowed while that stays within
// burst * interval of now. This is exactly a continuously refilling token bucket, but its state
// is one integer that a single CAS can update, and a bucket whose full_at has passed carries no
// state at all (so the per-client table may forget it). A plain value; thread-safe to share.
class BucketMath {
 public:
  // kLongAgo: full_at of a fresh (full) bucket.
  static constexpr std::int64_t kLongAgo = kLongAgoNs;

  // Throws std::invalid_argument unless 1e-6 <= per_second <= 1e9 and 1 <= burst <= 1e12.
  explicit BucketMath(Rate r);

  // admit: the verdict for taking `n` tokens at `now` from a bucket full at `full_at`; when
  // allowed, *next is the bucket's new full_at.
  Decision admit(std::int64_t full_at, std::int64_t now, std::int64_t n, std::int64_t* next) const {
    std::int64_t after = (full_at > now ? full_at : now) + n * interval_;
    if (after - now > capacity_) return {false, Nanos(after - now - capacity_)};
    *next = after;
    return {true, Nanos(0)};
  }
  // tokens: what a bucket full at `full_at` holds at `now` (fractional: refill is continuous).
  double tokens(std::int64_t full_at, std::int64_t now) const;
  std::int64_t interval_ns() const { return interval_; }  // refill time of one token
  std::int64_t capacity_ns() const { return capacity_; }  // refill time of a whole burst

 private:
  std::int64_t interval_;  // ns per token: 1e9 / per_second, rounded
  std::int64_t capacity_;  // ns: burst * interval
};

// TokenBucket: one bucket shared by every thread (the per-server limit). take() is lock-free:
// a load, the arithmetic, one CAS (retried only when another thread took a token in between);
// a refusal is read-only, so an overloaded server's rejections do not fight over the line.
class TokenBucket {
 public:
  explicit TokenBucket(Rate r) : math_(r) {}
  // take: takes `n` tokens at `now` if the bucket holds them.
  Decision take(TimePoint now, std::int64_t n = 1) {
    std::int64_t t = to_ns(now);
    std::int64_t full_at = full_at_.load(std::memory_order_relaxed);
    for (;;) {
      std::int64_t next = 0;
      Decision d = math_.admit(full_at, t, n, &next);
      if (!d.allowed) return d;
      // Relaxed: the word is the whole state; nothing else is published with it.
      if (full_at_.compare_exchange_weak(full_at, next, std::memory_order_relaxed)) return d;
    }
  }
  double tokens(TimePoint now) const {
    return math_.tokens(full_at_.load(std::memory_order_relaxed), to_ns(now));
  }
  const BucketMath& math() const { return math_; }

 private:
  BucketMath math_;
  std::atomic<std::int64_t> full_at_{BucketMath::kLongAgo};
};

}  // namespace mpg::kit
