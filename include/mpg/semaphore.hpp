// semaphore.hpp: mpg::Semaphore, a counting semaphore that parks goroutines (the production
// kit's concurrency limiter is built on it).
#pragma once
#include <atomic>
#include <cstdint>

#include "mpg/detail/sema.hpp"

namespace mpg {

class Semaphore {
 public:
  explicit Semaphore(std::uint32_t n) : max_(n), sema_(n) {}
  void acquire();
  bool try_acquire() {
    if (!sema_.try_acquire()) return false;
    held_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  // release: throws SyncMisuse when more units are released than the semaphore holds.
  void release();
  std::uint32_t available() const { return sema_.count(); }
  std::uint32_t capacity() const { return max_; }

 private:
  std::uint32_t max_;
  std::atomic<std::uint32_t> held_{0};  // units acquired and not yet released
  detail::Sema sema_;
};

}  // namespace mpg
