// syscall.cpp: mpg::blocking, Go's entersyscall/exitsyscall.
//
// Entry leaves the P in state Syscall, up for grabs, at the cost of a few stores: no hand-off,
// no wake-up. If the call lasts, sysmon retakes the P (CAS Syscall -> Idle) and hands it to an
// M that can use it. On return the M takes its P back by CAS if it is still there, else any idle
// P, else it queues the goroutine globally and goes idle itself. A G in a blocking call keeps
// its M, so thread-bound state (errno, a held OS lock) is safe inside f.
#include "mpg/runtime.hpp"
#include "runtime/sched.hpp"

namespace mpg::detail {

void entersyscall() {
  M* m = current_m();
  G* g = m ? m->curg.load(std::memory_order_relaxed) : nullptr;
  if (!g || g->syscall_depth++ > 0) return;  // not a goroutine, or nested: nothing to do
  m->count_syscall();  // odd: inside a blocking call (cpuwait.cpp leaves it out)
  P* p = m->p;
  p->blocking_calls.store(p->blocking_calls.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  g->set_status(GStatus::Running, GStatus::Syscall);
  p->syscalltick.store(p->syscalltick.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  m->oldp = p;
  m->p = nullptr;
  p->m.store(nullptr, std::memory_order_relaxed);
  p->status.store(PStatus::Syscall, std::memory_order_release);
}

void exitsyscall() {
  M* m = current_m();
  G* g = m ? m->curg.load(std::memory_order_relaxed) : nullptr;
  if (!g || --g->syscall_depth > 0) return;
  m->count_syscall();
  P* p = m->oldp;
  m->oldp = nullptr;
  PStatus expect = PStatus::Syscall;
  if (p->status.compare_exchange_strong(expect, PStatus::Running, std::memory_order_acq_rel)) {
    m->p = p;  // fast path: nobody took it
    p->m.store(m, std::memory_order_relaxed);
  } else {
    if (!reacquire_idle_p(m)) {
      syscall_exit_nop(m, g);  // returns once some M runs this G again, with a P
      if (g->preempt.load(std::memory_order_relaxed)) preempt_now(g);
      return;
    }
  }
  g->set_status(GStatus::Syscall, GStatus::Running);
  if (g->preempt.load(std::memory_order_relaxed)) preempt_now(g);
}

}  // namespace mpg::detail
