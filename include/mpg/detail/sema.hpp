// detail/sema.hpp: the runtime semaphore (Go's semacquire/semrelease) that Mutex, WaitGroup and
// Semaphore park goroutines on. A count plus a FIFO (or LIFO) list of parked goroutines.
#pragma once
#include <atomic>
#include <cstdint>

#include "mpg/detail/lock.hpp"

namespace mpg::detail {

struct SemaWaiter;

class Sema {
 public:
  explicit Sema(std::uint32_t n = 0) : count_(n) {}
  Sema(const Sema&) = delete;
  Sema& operator=(const Sema&) = delete;

  // try_acquire: takes one unit if the count is positive.
  bool try_acquire() {
    std::uint32_t v = count_.load(std::memory_order_relaxed);
    while (v > 0) {
      if (count_.compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    }
    return false;
  }
  // acquire: takes one unit, parking the goroutine until one is released. lifo: queue at the
  // front (a waiter that already waited, Go's Mutex starvation rule). reason: a WaitReason.
  void acquire(bool lifo, int reason) {
    if (try_acquire()) {
      settle();
      return;
    }
    acquire_slow(lifo, reason);
  }
  // release: adds one unit and wakes one waiter. handoff: the unit goes straight to the waiter,
  // which runs next (Go's starvation-mode hand-off).
  void release(bool handoff);
  std::uint32_t count() const { return count_.load(std::memory_order_relaxed); }
  std::uint32_t waiters() const { return nwait_.load(std::memory_order_relaxed); }

 private:
  void acquire_slow(bool lifo, int reason);
  // settle: the unit just taken may come from a release() that has not yet left this Sema (it
  // still looks at nwait_ after adding the unit). Return only once every such releaser is out,
  // so the caller may destroy the object the Sema lives in (a WaitGroup on a stack, a Mutex
  // freed by its last owner). Go's semaphores live in a global table and need no such wait;
  // TSan found the use-after-scope in CI (WaitGroup.ReuseAcrossRounds).
  void settle() {
    if (releasing_.load(std::memory_order_acquire) != 0) settle_slow();
  }
  void settle_slow();
  std::atomic<std::uint32_t> count_;
  std::atomic<std::uint32_t> nwait_{0};
  std::atomic<std::uint32_t> releasing_{0};  // release() calls still touching this Sema
  Lock lock_;
  SemaWaiter* head_ = nullptr;  // (lock_)
  SemaWaiter* tail_ = nullptr;  // (lock_)
};

// can_spin: whether a goroutine contending for a Mutex may spin (Go's sync_runtime_canSpin:
// few iterations, several Ps, others running, nothing queued locally).
bool can_spin(int iter);
void spin_pause();
std::int64_t now_ns();

}  // namespace mpg::detail
