// mutex.hpp: mpg::Mutex, Go's sync.Mutex: parks the goroutine, never the thread. Normal mode
// lets a running goroutine barge in (fast); a waiter starved for over 1 ms switches the mutex
// to starvation mode, where unlock hands it straight to the oldest waiter (fair).
#pragma once
#include <atomic>
#include <cstdint>

#include "mpg/detail/sema.hpp"

namespace mpg {

class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() {
    std::int32_t z = 0;
    if (state_.compare_exchange_strong(z, kLocked, std::memory_order_acquire, std::memory_order_relaxed)) return;
    lock_slow();
  }
  bool try_lock() {
    std::int32_t old = state_.load(std::memory_order_relaxed);
    if (old & (kLocked | kStarving)) return false;
    return state_.compare_exchange_strong(old, old | kLocked, std::memory_order_acquire, std::memory_order_relaxed);
  }
  // unlock: throws SyncMisuse if the mutex is not locked.
  void unlock() {
    std::int32_t nw = state_.fetch_sub(kLocked, std::memory_order_release) - kLocked;
    if (nw != 0) unlock_slow(nw);
  }

 private:
  static constexpr std::int32_t kLocked = 1, kWoken = 2, kStarving = 4, kWaiterShift = 3;
  void lock_slow();
  void unlock_slow(std::int32_t nw);
  std::atomic<std::int32_t> state_{0};
  detail::Sema sema_{0};
};

}  // namespace mpg
