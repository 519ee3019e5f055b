// chan_impl.hpp: the channel's internals (Go's hchan and sudog), shared by chan.cpp and
// select.cpp.
#pragma once
#include <atomic>
#include <cstddef>

#include "mpg/detail/chan_core.hpp"
#include "runtime/sched.hpp"

namespace mpg::detail {

class ChanCore;

// Sudog: a G waiting on one channel (Go's sudog). Lives on the waiting G's stack; linked into a
// channel's wait queue under that channel's lock.
struct Sudog {
  G* g = nullptr;
  void* elem = nullptr;       // send: the value to move; recv: raw storage for the value
  Sudog* next = nullptr;
  Sudog* prev = nullptr;
  ChanCore* c = nullptr;
  int case_index = 0;
  bool is_select = false;
  bool success = false;       // completed by a real send/recv (false: woken by close)
  bool linked = false;        // in a wait queue (c's lock)
};

// WaitQ: FIFO of Sudogs (c's lock).
struct WaitQ {
  Sudog* first = nullptr;
  Sudog* last = nullptr;
  void enqueue(Sudog* s) {
    s->next = nullptr;
    s->prev = last;
    if (last) last->next = s; else first = s;
    last = s;
    s->linked = true;
  }
  void remove(Sudog* s) {
    if (!s->linked) return;
    if (s->prev) s->prev->next = s->next; else first = s->next;
    if (s->next) s->next->prev = s->prev; else last = s->prev;
    s->next = s->prev = nullptr;
    s->linked = false;
  }
  // dequeue: the first waiter that can still be woken. A select's waiter is taken only if this
  // channel wins the select's claim (one CAS); losers are dropped from the queue.
  Sudog* dequeue() {
    for (;;) {
      Sudog* s = first;
      if (!s) return nullptr;
      remove(s);
      if (s->is_select) {
        std::uint64_t v = s->g->select_done.load(std::memory_order_acquire);
        if ((v & 1) || !s->g->select_done.compare_exchange_strong(v, v | 1, std::memory_order_acq_rel)) continue;
      }
      return s;
    }
  }
};

// ChanCore: one channel. The element buffer follows the struct in the same allocation.
class ChanCore {
 public:
  Lock lock;
  std::atomic<std::int32_t> refs{1};
  const ElemOps* ops = nullptr;
  std::size_t cap = 0;
  std::size_t stride = 0;            // element size rounded up to its alignment
  std::atomic<std::size_t> count{0}; // buffered elements (written under lock)
  std::size_t sendx = 0, recvx = 0;  // (lock)
  bool closed = false;               // (lock)
  WaitQ recvq, sendq;                // (lock)
  char* buf = nullptr;

  void* slot(std::size_t i) { return buf + i * stride; }
};

// The transfer steps, with c->lock held; both leave the lock held.
// send_direct: hand src to a parked receiver sg.
void send_direct(ChanCore* c, Sudog* sg, void* src);
// recv_direct: take from a parked sender sg (through the buffer if the channel is buffered).
void recv_direct(ChanCore* c, Sudog* sg, void* dst);
// buffer_put / buffer_take: c has room / c has an element.
void buffer_put(ChanCore* c, void* src);
void buffer_take(ChanCore* c, void* dst);
// wake: makes a completed waiter's G runnable (after the locks are released).
void wake_waiter(Sudog* sg);
void wake_waiter_on(M* m, Sudog* sg);  // m: the caller's current_m() (see ready_on)
// check_preempt: a channel operation that completed without parking is a runtime entry: the
// goroutine yields here if sysmon has asked it to (cooperative preemption). g: the caller's G
// (null outside the runtime).
inline void check_preempt(G* g) {
  if (g && g->preempt.load(std::memory_order_relaxed) && g->status.load(std::memory_order_relaxed) == GStatus::Running)
    preempt_now(g);
}
inline void check_preempt() { check_preempt(current_g()); }

}  // namespace mpg::detail
