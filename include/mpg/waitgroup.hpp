// waitgroup.hpp: mpg::WaitGroup, Go's sync.WaitGroup.
#pragma once
#include <atomic>
#include <cstdint>

#include "mpg/detail/sema.hpp"

namespace mpg {

class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;
  // add: adds delta to the counter; at zero every waiter wakes. Throws SyncMisuse if the
  // counter goes negative, or if add races with wait at zero.
  void add(int delta = 1);
  void done() { add(-1); }
  // wait: parks until the counter is zero.
  void wait();

 private:
  std::atomic<std::uint64_t> state_{0};  // counter << 32 | waiters
  detail::Sema sema_{0};
};

}  // namespace mpg
