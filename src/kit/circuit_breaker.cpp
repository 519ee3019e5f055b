// circuit_breaker.cpp: the breaker's state machine.
//
// Transitions (every edge goes through transition_locked, which bumps the generation):
//   closed    -> open       consecutive failures reach the threshold, or the window's failure
//                           ratio reaches its threshold with at least min_calls calls in it
//   open      -> half-open  the first admission or state() query after open_timeout
//   half-open -> closed     half_open_calls trial calls succeeded
//   half-open -> open       a trial call failed
#include "mpg/kit/circuit_breaker.hpp"

#include <mutex>
#include <stdexcept>
#include <string>

#include "mpg/kit/refusal.hpp"
#include "mpg/kit/registry.hpp"

namespace mpg::kit {

namespace {
using Guard = std::lock_guard<mpg::detail::Lock>;
}  // namespace

const char* state_name(BreakerState s) {
  switch (s) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
  }
  return "?";
}

CircuitBreaker::CircuitBreaker(BreakerConfig config)
    : config_(std::move(config)), packed_(pack(0, BreakerState::kClosed)) {
  if (config_.window_buckets == 0 || config_.window.count() <= 0)
    throw std::invalid_argument("kit::CircuitBreaker: window and window_buckets must be > 0");
  if (config_.half_open_calls == 0)
    throw std::invalid_argument("kit::CircuitBreaker: half_open_calls must be > 0");
  bucket_ns_ = std::chrono::duration_cast<Nanos>(config_.window).count() / config_.window_buckets;
  if (bucket_ns_ <= 0) bucket_ns_ = 1;
  window_.resize(config_.window_buckets);
}

CircuitBreaker::Call CircuitBreaker::try_acquire() {
  // Closed: admit without the lock; the generation read here ties the outcome to this era.
  std::uint64_t p = packed_.load(std::memory_order_acquire);
  if (unpack_state(p) == BreakerState::kClosed) return Call(this, p >> 2);
  std::int64_t now = to_ns(config_.time.now());
  // Open and not yet due: refuse without the lock (open_until_ was stored before packed_).
  if (unpack_state(p) == BreakerState::kOpen && now < open_until_.load(std::memory_order_relaxed)) {
    rejected_.inc();
    return Call();
  }
  Change c;
  bool changed, admitted = false;
  std::uint64_t gen;
  {
    Guard g(mu_);
    changed = advance_locked(now, &c);
    gen = generation_;
    if (state_ == BreakerState::kClosed) {
      admitted = true;
    } else if (state_ == BreakerState::kHalfOpen && trials_issued_ < config_.half_open_calls) {
      trials_issued_++;
      admitted = true;
    }
  }
  if (changed) notify(c);
  if (!admitted) {
    rejected_.inc();
    return Call();
  }
  return Call(this, gen);
}

void CircuitBreaker::report(std::uint64_t gen, bool ok) {
  Change c;
  bool changed = false;
  {
    Guard g(mu_);
    if (gen != generation_) return;  // admitted before a transition: no longer relevant
    std::int64_t now = to_ns(config_.time.now());
    if (state_ == BreakerState::kClosed) {
      if (record_locked(ok, now)) {
        transition_locked(BreakerState::kOpen, now, &c);
        changed = true;
      }
    } else if (state_ == BreakerState::kHalfOpen) {
      if (!ok) {
        transition_locked(BreakerState::kOpen, now, &c);
        changed = true;
      } else if (++trials_ok_ >= config_.half_open_calls) {
        transition_locked(BreakerState::kClosed, now, &c);
        changed = true;
      }
    }
    // Open: no call of this generation was admitted, so none reports.
  }
  if (changed) notify(c);
}

bool CircuitBreaker::record_locked(bool ok, std::int64_t now) {
  std::int64_t epoch = now / bucket_ns_;
  Bucket& b = window_[std::size_t(epoch % std::int64_t(window_.size()))];
  if (b.epoch != epoch) b = Bucket{epoch, 0, 0};
  b.calls++;
  if (ok) {
    consecutive_ = 0;
    return false;
  }
  b.failures++;
  consecutive_++;
  if (config_.consecutive_failures != 0 && consecutive_ >= config_.consecutive_failures)
    return true;
  if (config_.failure_ratio <= 0) return false;
  std::uint64_t calls = 0, failures = 0;
  for (const Bucket& w : window_) {
    if (w.epoch > epoch - std::int64_t(window_.size()) && w.epoch <= epoch) {
      calls += w.calls;
      failures += w.failures;
    }
  }
  return calls >= config_.min_calls && double(failures) >= config_.failure_ratio * double(calls);
}

bool CircuitBreaker::advance_locked(std::int64_t now, Change* c) {
  if (state_ != BreakerState::kOpen) return false;
  if (now - opened_at_ < std::chrono::duration_cast<Nanos>(config_.open_timeout).count())
    return false;
  transition_locked(BreakerState::kHalfOpen, now, c);
  return true;
}

void CircuitBreaker::transition_locked(BreakerState to, std::int64_t now, Change* c) {
  *c = {state_, to};
  state_ = to;
  generation_++;
  consecutive_ = trials_issued_ = trials_ok_ = 0;
  for (Bucket& b : window_) b = Bucket{};
  if (to == BreakerState::kOpen) {
    opened_at_ = now;
    open_until_.store(now + std::chrono::duration_cast<Nanos>(config_.open_timeout).count(),
                      std::memory_order_relaxed);
  }
  transitions_[std::size_t(to)].fetch_add(1, std::memory_order_relaxed);
  // Release: a thread that reads the new word also sees the state it summarizes.
  packed_.store(pack(generation_, to), std::memory_order_release);
}

void CircuitBreaker::notify(const Change& c) const {
  if (config_.on_state_change) config_.on_state_change(c.from, c.to);
}

BreakerState CircuitBreaker::state() {
  Change c;
  bool changed;
  BreakerState s;
  {
    Guard g(mu_);
    changed = advance_locked(to_ns(config_.time.now()), &c);
    s = state_;
  }
  if (changed) notify(c);
  return s;
}

Nanos CircuitBreaker::open_remaining() {
  Guard g(mu_);
  if (state_ != BreakerState::kOpen) return Nanos(0);
  Nanos left = std::chrono::duration_cast<Nanos>(config_.open_timeout) -
               Nanos(to_ns(config_.time.now()) - opened_at_);
  return left > Nanos(0) ? left : Nanos(0);
}

http::Middleware CircuitBreaker::middleware(BreakerHttp options) {
  if (!options.fallback) {
    options.fallback = [this](const http::Request&, http::Response& res) {
      refuse(res, 503, open_remaining(), "service unavailable (circuit open)\n");
    };
  }
  if (!options.is_failure)
    options.is_failure = [](const http::Response& res) { return res.status >= 500; };
  return [this, options = std::move(options)](http::Handler next) -> http::Handler {
    return [this, options, next = std::move(next)](const http::Request& req, http::Response& res) {
      Call c = try_acquire();
      if (!c) return options.fallback(req, res);
      next(req, res);  // a throw leaves c unreported: a failure
      if (options.is_failure(res)) {
        c.failure();
      } else {
        c.success();
      }
    };
  };
}

void CircuitBreaker::register_metrics(Registry& r, std::string_view name,
                                      std::string_view prefix) const {
  std::string p(prefix), n(name);
  r.gauge_fn(p + "breaker_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
             [this] { return double(unpack_state(packed_.load(std::memory_order_relaxed))); },
             {{"breaker", n}});
  for (BreakerState to : {BreakerState::kClosed, BreakerState::kOpen, BreakerState::kHalfOpen}) {
    r.counter_fn(
        p + "breaker_transitions_total", "Circuit breaker transitions, by the state entered.",
        [this, to] { return double(transitions(to)); }, {{"breaker", n}, {"to", state_name(to)}});
  }
  r.counter_fn(p + "breaker_rejected_total",
               "Calls the circuit breaker refused (answered by the fallback).",
               [this] { return double(rejected()); }, {{"breaker", n}});
}

}  // namespace mpg::kit
