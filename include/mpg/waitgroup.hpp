// waitgroup.hpp: mpg::WaitGroup, Go's sync.WaitGroup.
#pragma once
#include <atomic>
#include <cstdint>

#include "mpg/detail/sema.hpp"

namespace mpg {

// A WaitGroup has a cache line to itself: every goroutine that finishes writes it, and the usual
// place for one is the stack frame of the goroutine that spawns and then waits, beside the
// return addresses its calls to mpg::go push. Sharing that line, each done() took it from the
// spawner's core and the spawner's next call took it back (spawn_wait_1e6 at procs=2: 47.4 ->
// 34.5 ns a goroutine, docs/runtime.md). Go's WaitGroup escapes to the heap in the same code.
class alignas(64) WaitGroup {
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
