// sema.cpp: the runtime semaphore (Go's sema.go, without the address tree: each sync object
// embeds its own Sema) and CondVar's wait list.
#include "mpg/detail/sema.hpp"

#include <mutex>

#include "mpg/condvar.hpp"
#include "mpg/errors.hpp"
#include "mpg/runtime.hpp"
#include "mpg/semaphore.hpp"
#include "runtime/sched.hpp"

namespace mpg::detail {

// SemaWaiter: a parked goroutine; lives on its stack.
struct SemaWaiter {
  G* g;
  SemaWaiter* next = nullptr;
  SemaWaiter* prev = nullptr;
  bool ticket = false;  // the releaser handed the unit over directly
};

static bool unlock_lock(G*, void* l) {
  static_cast<Lock*>(l)->unlock();
  return true;
}

void Sema::acquire_slow(bool lifo, int reason) {
  G* g = current_g();
  if (!g) throw RuntimeMisuse("mpg: blocking sync operation outside a goroutine");
  for (;;) {
    lock_.lock();
    // Count ourselves as a waiter before the re-check, so a release after the re-check sees us.
    nwait_.fetch_add(1, std::memory_order_seq_cst);
    if (try_acquire()) {
      nwait_.fetch_sub(1, std::memory_order_seq_cst);
      lock_.unlock();
      settle();
      return;
    }
    SemaWaiter w{g};
    if (lifo && head_) {
      w.next = head_;
      head_->prev = &w;
      head_ = &w;
    } else {
      w.prev = tail_;
      if (tail_) tail_->next = &w; else head_ = &w;
      tail_ = &w;
    }
    park(static_cast<WaitReason>(reason), unlock_lock, &lock_);
    if (w.ticket || try_acquire()) {
      settle();
      return;
    }
  }
}

void Sema::settle_slow() {
  while (releasing_.load(std::memory_order_acquire) != 0) {
    if (current_g()) mpg::yield();  // the releaser may need this P to finish (procs=1)
    else cpu_relax();
  }
}

void Sema::release(bool handoff) {
  releasing_.fetch_add(1, std::memory_order_seq_cst);  // before the unit: see settle()
  count_.fetch_add(1, std::memory_order_seq_cst);
  // No waiter: done. This read must follow the increment (seq_cst), or a waiter that counted
  // itself and re-checked the count in between would sleep through our unit.
  if (nwait_.load(std::memory_order_seq_cst) == 0) {
    releasing_.fetch_sub(1, std::memory_order_release);
    return;
  }
  lock_.lock();
  SemaWaiter* w = head_;
  if (!w) {
    lock_.unlock();
    releasing_.fetch_sub(1, std::memory_order_release);
    return;
  }
  head_ = w->next;
  if (head_) head_->prev = nullptr; else tail_ = nullptr;
  nwait_.fetch_sub(1, std::memory_order_seq_cst);
  if (handoff && try_acquire()) w->ticket = true;
  lock_.unlock();
  bool ticket = w->ticket;  // w lives on the waiter's stack: read before it runs
  G* g = w->g;
  releasing_.fetch_sub(1, std::memory_order_release);  // the last touch of this Sema
  ready(g);
  if (handoff && ticket) mpg::yield();  // let the new owner run now (Go's goyield)
}

bool can_spin(int iter) {
  // Go: at most 4 rounds, multicore, more Ps than idle ones plus spinners plus us, and nothing
  // else waiting on our own P.
  if (iter >= 4 || !sched || sched->procs <= 1) return false;
  if (sched->procs <= sched->npidle.load(std::memory_order_relaxed) + sched->nmspinning.load(std::memory_order_relaxed) + 1)
    return false;
  M* m = current_m();
  if (!m || !m->p) return false;
  return m->p->runq.size() == 0 && m->p->runnext.load(std::memory_order_relaxed) == nullptr;
}

void spin_pause() {
  for (int i = 0; i < 30; i++) cpu_relax();
}

std::int64_t now_ns() { return nanotime(); }

// CondWaiter: a goroutine parked in CondVar::wait with its ticket; lives on its stack.
struct CondWaiter {
  G* g;
  std::uint64_t ticket;
  CondWaiter* next = nullptr;
};

}  // namespace mpg::detail

namespace mpg {

void CondVar::wait(Mutex& m) {
  using namespace detail;
  G* g = current_g();
  if (!g) throw RuntimeMisuse("mpg::CondVar::wait outside a goroutine");
  lock_.lock();
  std::uint64_t ticket = wait_ticket_++;
  lock_.unlock();
  m.unlock();
  lock_.lock();
  if (ticket < notify_ticket_) {  // signalled between the unlock and now
    lock_.unlock();
  } else {
    CondWaiter w{g, ticket};
    // Waiters queue in ticket order. Usually ours is the newest (append at the tail); one that
    // took a later ticket may have parked first (walk to our place).
    if (!tail_ || tail_->ticket < ticket) {
      if (tail_) tail_->next = &w; else head_ = &w;
      tail_ = &w;
    } else {
      CondWaiter** at = &head_;
      while ((*at)->ticket < ticket) at = &(*at)->next;
      w.next = *at;
      *at = &w;
    }
    park(WaitReason::CondWait, unlock_lock, &lock_);
  }
  m.lock();
}

void CondVar::signal() {
  lock_.lock();
  if (notify_ticket_ == wait_ticket_) {  // nobody waits
    lock_.unlock();
    return;
  }
  std::uint64_t t = notify_ticket_++;
  // The holder of ticket t may not have parked yet; then it will see its ticket signalled.
  // Tickets below t were signalled already, so ticket t, if parked, is at the head.
  detail::CondWaiter* w = nullptr;
  if (head_ && head_->ticket == t) {
    w = head_;
    head_ = w->next;
    if (!head_) tail_ = nullptr;
  }
  lock_.unlock();
  if (w) detail::ready(w->g);
}

void CondVar::broadcast() {
  lock_.lock();
  notify_ticket_ = wait_ticket_;
  detail::CondWaiter* w = head_;
  head_ = tail_ = nullptr;
  lock_.unlock();
  while (w) {
    detail::CondWaiter* next = w->next;  // read before the waiter runs and its stack moves on
    detail::ready(w->g);
    w = next;
  }
}

void Semaphore::acquire() {
  sema_.acquire(false, int(detail::WaitReason::Semacquire));
  held_.fetch_add(1, std::memory_order_relaxed);
}

void Semaphore::release() {
  // Claim one held unit first (a CAS loop, so two racing over-releases cannot both pass).
  std::uint32_t h = held_.load(std::memory_order_relaxed);
  do {
    if (h == 0) throw SyncMisuse("mpg::Semaphore: released more than acquired");
  } while (!held_.compare_exchange_weak(h, h - 1, std::memory_order_relaxed));
  sema_.release(false);
}

}  // namespace mpg
