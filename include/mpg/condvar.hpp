// condvar.hpp: mpg::CondVar, Go's sync.Cond over an mpg::Mutex.
//
// Go's notifyList: wait takes a ticket under a short internal lock, releases the Mutex with no
// lock held, then parks only if its ticket has not been signalled meanwhile. Holding an
// internal lock across Mutex::unlock would deadlock: a starving Mutex hands itself over and
// yields to the new owner, which may signal.
#pragma once
#include <cstdint>
#include <mutex>

#include "mpg/detail/lock.hpp"
#include "mpg/mutex.hpp"

namespace mpg {

namespace detail {
struct CondWaiter;
}

class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;
  // wait: atomically unlocks m and parks; relocks m before returning. Wake-ups may be spurious
  // from the caller's point of view (another goroutine may run first): wait in a loop.
  void wait(Mutex& m);
  void wait(std::unique_lock<Mutex>& lk) { wait(*lk.mutex()); }
  template <class Pred>
  void wait(std::unique_lock<Mutex>& lk, Pred pred) {
    while (!pred()) wait(lk);
  }
  void signal();      // wakes one waiter (FIFO)
  void broadcast();   // wakes all
  void notify_one() { signal(); }
  void notify_all() { broadcast(); }

 private:
  detail::Lock lock_;
  std::uint64_t wait_ticket_ = 0;    // next ticket to hand to a waiter (lock_)
  std::uint64_t notify_ticket_ = 0;  // every ticket below this has been signalled (lock_)
  detail::CondWaiter* head_ = nullptr;  // parked waiters, in ticket order (lock_)
  detail::CondWaiter* tail_ = nullptr;
};

}  // namespace mpg
