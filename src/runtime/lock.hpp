// lock.hpp: the runtime's thread-level locks: Lock (in mpg/detail/lock.hpp) and Note.
#pragma once
#include <atomic>
#include <cstdint>

#include "mpg/detail/lock.hpp"
#include "runtime/platform.hpp"

namespace mpg::detail {

// Note: a one-shot futex event (Go's note): sleep until wake, then clear before reuse. Owned by
// one M (its park note) or by the poller.
class Note {
 public:
  void clear() { key_.store(0, std::memory_order_relaxed); }
  void wake() {
    if (key_.exchange(1, std::memory_order_release) == 0) futex_wake(&key_, 1);
  }
  void sleep() {
    while (key_.load(std::memory_order_acquire) == 0) futex_wait(&key_, 0);
  }
  // sleep_for: returns true if woken, false on timeout.
  bool sleep_for(std::int64_t ns) {
    std::int64_t deadline = nanotime() + ns;
    while (key_.load(std::memory_order_acquire) == 0) {
      std::int64_t left = deadline - nanotime();
      if (left <= 0) return false;
      futex_wait(&key_, 0, left);
    }
    return true;
  }
  bool woken() const { return key_.load(std::memory_order_acquire) != 0; }

 private:
  std::atomic<std::uint32_t> key_{0};
};

}  // namespace mpg::detail
