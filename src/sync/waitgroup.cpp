// waitgroup.cpp: Go's sync.WaitGroup: one 64-bit word (counter, waiters) and a semaphore.
#include "mpg/waitgroup.hpp"

#include "mpg/errors.hpp"
#include "runtime/g.hpp"

namespace mpg {

void WaitGroup::add(int delta) {
  std::uint64_t st = state_.fetch_add(std::uint64_t(std::int64_t(delta)) << 32, std::memory_order_acq_rel) +
                     (std::uint64_t(std::int64_t(delta)) << 32);
  auto v = std::int32_t(st >> 32);
  auto w = std::uint32_t(st);
  if (v < 0) throw SyncMisuse("mpg::WaitGroup: negative counter");
  if (w != 0 && delta > 0 && v == delta) throw SyncMisuse("mpg::WaitGroup: add called concurrently with wait");
  if (v > 0 || w == 0) return;
  // The counter reached zero with waiters: nobody may change the state now but us.
  if (state_.load(std::memory_order_relaxed) != st) throw SyncMisuse("mpg::WaitGroup: misuse: add concurrently with wait");
  state_.store(0, std::memory_order_relaxed);
  for (; w != 0; w--) sema_.release(false);
}

void WaitGroup::wait() {
  std::uint64_t st = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((st >> 32) == 0) return;
    if (state_.compare_exchange_weak(st, st + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
      sema_.acquire(false, int(detail::WaitReason::WaitGroup));
      if (state_.load(std::memory_order_acquire) != 0) throw SyncMisuse("mpg::WaitGroup: reused before wait returned");
      return;
    }
  }
}

}  // namespace mpg
