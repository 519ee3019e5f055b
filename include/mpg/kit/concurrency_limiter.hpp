// concurrency_limiter.hpp: at most N requests in flight; the next one gets 503 at once.
#pragma once
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mpg/http/handler.hpp"
#include "mpg/kit/metrics.hpp"

namespace mpg::kit {

class Registry;

// Slots: a count that never exceeds its limit: try_acquire() succeeds only while fewer than
// limit() are held. Lock-free, never waits (a reactor thread cannot), so unlike
// mpg::Semaphore it works on any thread. The refusal path is a load and no write, so an
// overloaded server does not fight over the line to be told no.
class Slots {
 public:
  explicit Slots(std::size_t limit) : limit_(limit) {}
  // try_acquire: takes a slot; on success *held (if given) is the count including it.
  bool try_acquire(std::size_t* held = nullptr) {
    std::size_t n = used_.load(std::memory_order_relaxed);
    do {
      if (n >= limit_) return false;
    } while (!used_.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel,
                                          std::memory_order_relaxed));
    if (held) *held = n + 1;
    return true;
  }
  // release: gives a slot back; returns the count left. Calls must match successful acquires.
  std::size_t release() { return used_.fetch_sub(1, std::memory_order_acq_rel) - 1; }
  std::size_t used() const { return used_.load(std::memory_order_relaxed); }
  std::size_t limit() const { return limit_; }

 private:
  const std::size_t limit_;
  std::atomic<std::size_t> used_{0};
};

// ConcurrencyConfig: the seed's semaphore of 100.
struct ConcurrencyConfig {
  std::size_t limit = 100;  // requests in flight at once, across every thread
  // retry_after: the Retry-After of a 503. A request here lasts microseconds to milliseconds;
  // one second is the smallest value the field can say.
  std::chrono::seconds retry_after{1};
};

// ConcurrencyLimiter: admits a request while fewer than `limit` are in flight and refuses the
// next with 503 and Retry-After; it never queues (a loop thread cannot wait for a slot, and a
// queue only turns overload into latency). Thread-safe.
class ConcurrencyLimiter {
 public:
  explicit ConcurrencyLimiter(ConcurrencyConfig config = {})
      : config_(config), slots_(config.limit) {}

  // Permit: one admitted request; releases its slot when destroyed. Move-only.
  class Permit {
   public:
    Permit() = default;
    explicit Permit(Slots* s) : slots_(s) {}
    Permit(Permit&& o) noexcept : slots_(o.slots_) { o.slots_ = nullptr; }
    Permit& operator=(Permit&& o) noexcept {
      if (this != &o) {
        reset();
        slots_ = o.slots_;
        o.slots_ = nullptr;
      }
      return *this;
    }
    ~Permit() { reset(); }
    explicit operator bool() const { return slots_ != nullptr; }
    void reset() {
      if (slots_) slots_->release();
      slots_ = nullptr;
    }

   private:
    Slots* slots_ = nullptr;
  };

  // try_acquire: a Permit, or an empty one (counted as refused) when `limit` are in flight.
  Permit try_acquire() {
    if (slots_.try_acquire()) return Permit(&slots_);
    refused_.inc();
    return Permit();
  }
  // middleware: runs the handler under a Permit, or answers 503 with Retry-After. The limiter
  // must outlive every handler it wraps.
  http::Middleware middleware();

  std::size_t in_flight() const { return slots_.used(); }
  std::size_t limit() const { return slots_.limit(); }
  std::uint64_t refused() const { return refused_.value(); }
  // register_metrics: <prefix>concurrency_in_flight, <prefix>concurrency_limit and
  // <prefix>concurrency_refused_total, read at scrape time. The limiter must outlive `r`.
  void register_metrics(Registry& r, std::string_view prefix = "mpg_") const;

 private:
  ConcurrencyConfig config_;
  Slots slots_;
  Counter refused_;
};

}  // namespace mpg::kit
