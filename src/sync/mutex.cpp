// mutex.cpp: Go's sync.Mutex, mechanism for mechanism (normal and starvation modes).
#include "mpg/mutex.hpp"

#include "mpg/errors.hpp"
#include "runtime/g.hpp"

namespace mpg {

namespace {
// kStarvationNs: a waiter that waited this long switches the mutex to starvation mode.
constexpr std::int64_t kStarvationNs = 1'000'000;
}

void Mutex::lock_slow() {
  std::int64_t wait_start = 0;
  bool starving = false, awoke = false;
  int iter = 0;
  std::int32_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    // Spin while the holder is running and the mutex is not starving: it may unlock soon.
    if ((old & (kLocked | kStarving)) == kLocked && detail::can_spin(iter)) {
      // Tell unlock not to wake a sleeper while we are awake and spinning.
      if (!awoke && !(old & kWoken) && (old >> kWaiterShift) != 0 &&
          state_.compare_exchange_strong(old, old | kWoken, std::memory_order_relaxed))
        awoke = true;
      detail::spin_pause();
      iter++;
      old = state_.load(std::memory_order_relaxed);
      continue;
    }
    std::int32_t nw = old;
    if (!(old & kStarving)) nw |= kLocked;  // a starving mutex is for the queued waiters only
    if (old & (kLocked | kStarving)) nw += 1 << kWaiterShift;
    if (starving && (old & kLocked)) nw |= kStarving;
    if (awoke) nw &= ~kWoken;
    if (state_.compare_exchange_strong(old, nw, std::memory_order_acquire, std::memory_order_relaxed)) {
      if (!(old & (kLocked | kStarving))) return;  // took it
      bool lifo = wait_start != 0;
      if (wait_start == 0) wait_start = detail::now_ns();
      sema_.acquire(lifo, int(detail::WaitReason::Mutex));
      starving = starving || detail::now_ns() - wait_start > kStarvationNs;
      old = state_.load(std::memory_order_relaxed);
      if (old & kStarving) {
        // Handed off: we own it. Fix up the state: locked, one waiter less, and leave
        // starvation mode if we waited briefly or are the last waiter.
        std::int32_t delta = kLocked - (1 << kWaiterShift);
        if (!starving || (old >> kWaiterShift) == 1) delta -= kStarving;
        state_.fetch_add(delta, std::memory_order_acquire);
        return;
      }
      awoke = true;
      iter = 0;
    }
  }
}

void Mutex::unlock_slow(std::int32_t nw) {
  if (!((nw + kLocked) & kLocked)) {
    state_.fetch_add(kLocked, std::memory_order_relaxed);  // undo, so the mutex stays usable
    throw SyncMisuse("mpg::Mutex: unlock of unlocked mutex");
  }
  if (!(nw & kStarving)) {
    std::int32_t old = nw;
    for (;;) {
      // Nobody to wake, or someone is already awake or took the lock: done.
      if ((old >> kWaiterShift) == 0 || (old & (kLocked | kWoken | kStarving))) return;
      nw = (old - (1 << kWaiterShift)) | kWoken;
      if (state_.compare_exchange_strong(old, nw, std::memory_order_release, std::memory_order_relaxed)) {
        sema_.release(false);
        return;
      }
    }
  }
  sema_.release(true);  // starvation: hand the mutex to the first waiter
}

}  // namespace mpg
