// circuit_breaker.hpp: a circuit breaker around a downstream call (closed, open, half-open),
// with a fallback, as an object and as HTTP middleware.
#pragma once
#include <cxxabi.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mpg/detail/lock.hpp"
#include "mpg/http/handler.hpp"
#include "mpg/kit/metrics.hpp"
#include "mpg/kit/time.hpp"

namespace mpg::kit {

class Registry;

// BreakerState: who gets through.
enum class BreakerState : std::uint8_t {
  kClosed,    // every call goes downstream; outcomes are counted against the thresholds
  kOpen,      // no call goes downstream: the fallback answers, until open_timeout has passed
  kHalfOpen,  // up to half_open_calls trial calls go downstream; the others get the fallback
};
const char* state_name(BreakerState s);  // "closed", "open", "half_open"

// BreakerConfig: thresholds, timeouts and the observer. Either threshold opens the breaker.
struct BreakerConfig {
  // consecutive_failures: failures in a row that open it (0: this threshold is off).
  std::uint32_t consecutive_failures = 5;
  // failure_ratio: failures / calls over the rolling window that open it (0: off), counted
  // only once the window holds min_calls calls, so three calls and two failures do not trip.
  double failure_ratio = 0.5;
  std::uint32_t min_calls = 20;
  // window, window_buckets: the rolling window, which moves one bucket (window / buckets) at
  // a time, so a burst of failures ages out within a bucket's time of `window`.
  std::chrono::milliseconds window{10'000};
  std::uint32_t window_buckets = 10;
  // open_timeout: how long it stays open before letting trial calls through.
  std::chrono::milliseconds open_timeout{5'000};
  // half_open_calls: trial calls admitted while half-open. That many successes close the
  // breaker; any trial failure opens it again (and restarts open_timeout).
  std::uint32_t half_open_calls = 1;
  TimeSource time;
  // on_state_change: called after every transition, outside the breaker's lock, on the thread
  // whose call caused it; it may call back into the breaker. Two transitions on two threads
  // may be reported in either order: each carries its own from and to.
  std::function<void(BreakerState from, BreakerState to)> on_state_change;
};

// CircuitBreaker: fails fast while a downstream is failing, and probes it back to health.
// Thread-safe, never waits on anything but its own short lock (mpg::detail::Lock), so it works
// on loop threads and in goroutines. Admission while closed, and refusal while open, are one
// atomic load (and a clock read); each outcome takes the lock to update the counts. Outcomes of
// calls admitted before a transition are ignored (each call carries the breaker's generation, as in
// sony/gobreaker), so a slow call from the closed era cannot close a breaker that has since opened.
class CircuitBreaker {
 public:
  explicit CircuitBreaker(BreakerConfig config = {});
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // Call: permission for one downstream call; report success() or failure() once. A Call
  // destroyed unreported counts as a failure (so an exception cannot leak a half-open trial
  // slot). An empty Call (operator bool false) means: refused, use the fallback. Move-only.
  class Call {
   public:
    Call() = default;
    Call(Call&& o) noexcept : b_(o.b_), gen_(o.gen_) { o.b_ = nullptr; }
    Call& operator=(Call&&) = delete;
    ~Call() { failure(); }
    explicit operator bool() const { return b_ != nullptr; }
    void success() { report(true); }
    void failure() { report(false); }

   private:
    friend class CircuitBreaker;
    Call(CircuitBreaker* b, std::uint64_t gen) : b_(b), gen_(gen) {}
    void report(bool ok) {
      if (b_) std::exchange(b_, nullptr)->report(gen_, ok);
    }
    CircuitBreaker* b_ = nullptr;
    std::uint64_t gen_ = 0;
  };

  // try_acquire: a Call if the breaker lets one through now, else an empty Call.
  Call try_acquire();

  // call: runs f() through the breaker: f's result on success, fallback() when refused or
  // when f throws (the throw counts as a failure and is not rethrown). f and fallback must
  // return the same type.
  template <class F, class Fallback>
  std::invoke_result_t<F&> call(F&& f, Fallback&& fallback) {
    Call c = try_acquire();
    if (!c) return fallback();
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
        f();
        c.success();
      } else {
        auto result = f();
        c.success();
        return result;
      }
    } catch (abi::__forced_unwind&) {
      throw;  // thread cancellation must unwind through
    } catch (...) {
      c.failure();
      return fallback();
    }
  }

  // BreakerHttp: how the middleware judges and replaces responses.
  struct BreakerHttp {
    // fallback: answers while the breaker refuses. Default: 503, Retry-After (the time left
    // open, at least 1 s), "service unavailable (circuit open)".
    http::Handler fallback;
    // is_failure: whether a response counts as a failure. Default: status >= 500. A handler
    // that throws is a failure (and the throw goes on to the session's 500).
    std::function<bool(const http::Response&)> is_failure;
  };
  // middleware: wraps a handler (the downstream) in the breaker; must not outlive it.
  http::Middleware middleware(BreakerHttp options = {});

  // state: the state now, moving open to half-open first if open_timeout has passed.
  BreakerState state();
  // open_remaining: time left before half-open (0 unless open).
  Nanos open_remaining();
  std::uint64_t rejected() const { return rejected_.value(); }
  // transitions: how many times the breaker entered state `to`.
  std::uint64_t transitions(BreakerState to) const {
    return transitions_[std::size_t(to)].load(std::memory_order_relaxed);
  }
  // register_metrics: <prefix>breaker_state{breaker=name} (0 closed, 1 open, 2 half-open, as of
  // the last call), <prefix>breaker_transitions_total{breaker=name,to=...} and
  // <prefix>breaker_rejected_total{breaker=name}. The breaker must outlive `r`.
  void register_metrics(Registry& r, std::string_view name, std::string_view prefix = "mpg_") const;

 private:
  struct Bucket {
    std::int64_t epoch = -1;  // window position (time / bucket length) these counts are for
    std::uint32_t calls = 0;
    std::uint32_t failures = 0;
  };
  // Change: a transition to report once the lock is released.
  struct Change {
    BreakerState from = BreakerState::kClosed, to = BreakerState::kClosed;
  };

  void report(std::uint64_t gen, bool ok);
  // The *_locked functions run under mu_; they return a transition to report, if any.
  bool advance_locked(std::int64_t now, Change* c);  // open -> half-open when due
  void transition_locked(BreakerState to, std::int64_t now, Change* c);
  bool record_locked(bool ok, std::int64_t now);  // closed: count; true if a threshold tripped
  void notify(const Change& c) const;

  static std::uint64_t pack(std::uint64_t gen, BreakerState s) {
    return gen << 2 | std::uint64_t(s);
  }
  static BreakerState unpack_state(std::uint64_t p) { return BreakerState(p & 3); }

  BreakerConfig config_;
  std::int64_t bucket_ns_;  // window / window_buckets
  // packed_: generation << 2 | state, published (release) after each transition so admission
  // in the closed state needs no lock. Written under mu_ only.
  std::atomic<std::uint64_t> packed_;
  // open_until_: while open, when open_timeout ends (ns); written before packed_ (release), so
  // a refusal while open needs no lock either.
  std::atomic<std::int64_t> open_until_{0};
  std::array<std::atomic<std::uint64_t>, 3> transitions_{};  // by target state
  Counter rejected_;

  mutable mpg::detail::Lock mu_;
  // Guarded by mu_:
  BreakerState state_ = BreakerState::kClosed;
  std::uint64_t generation_ = 0;
  std::int64_t opened_at_ = 0;       // when it last opened (ns)
  std::uint32_t consecutive_ = 0;    // closed: failures in a row
  std::uint32_t trials_issued_ = 0;  // half-open: trial calls let through
  std::uint32_t trials_ok_ = 0;      // half-open: trial successes
  std::vector<Bucket> window_;       // closed: the rolling window, window_buckets entries
};

}  // namespace mpg::kit
