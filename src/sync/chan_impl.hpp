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

// WaitQ: FIFO of Sudogs (c's lock). n counts them; a buffered channel's lock-free side reads it
// without the lock to learn whether anyone waits (ring_push, ring_pop).
struct WaitQ {
  Sudog* first = nullptr;
  Sudog* last = nullptr;
  std::atomic<std::uint32_t> n{0};
  void enqueue(Sudog* s) {
    s->next = nullptr;
    s->prev = last;
    if (last) last->next = s; else first = s;
    last = s;
    s->linked = true;
    n.store(n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void remove(Sudog* s) {
    if (!s->linked) return;
    if (s->prev) s->prev->next = s->next; else first = s->next;
    if (s->next) s->next->prev = s->prev; else last = s->prev;
    s->next = s->prev = nullptr;
    s->linked = false;
    n.store(n.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
  // waiting: somebody may wait (read without the lock, after a seq_cst operation on the ring).
  bool waiting() const { return n.load(std::memory_order_seq_cst) != 0; }
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

// A buffered channel's elements live in a lock-free ring (a bounded queue with a sequence
// stamp per slot, Vyukov's design as crossbeam's array channel has it): a send claims the tail
// position by CAS, moves its value into the slot and publishes it by storing the slot's stamp;
// a receive claims the head the same way. Positions are lap | index: index < cap in a field of
// `mark` (a power of two above cap), so the tail can carry the closed bit (`mark`) that close()
// sets and every later CAS on the tail sees. The lock is taken only to wait, to wake a waiter, and to close.
enum class RingRes { Ok, Blocked, Closed };  // Blocked: full for a send, empty for a receive

// ChanCore: one channel. The element buffer follows the struct in the same allocation
// (unbuffered: nothing; buffered: cap slots of stride bytes: the stamp, then the element).
class ChanCore {
 public:
  alignas(64) std::atomic<std::uint64_t> head{0};  // next position to receive (buffered)
  alignas(64) std::atomic<std::uint64_t> tail{0};  // next position to send, | mark once closed
  alignas(64) Lock lock;
  std::atomic<std::int32_t> refs{1};
  const ElemOps* ops = nullptr;
  std::size_t cap = 0;
  std::size_t stride = 0;            // slot size (stamp + element, aligned)
  std::size_t elem_off = 0;          // element's offset in its slot
  std::uint64_t mark = 0, one_lap = 0;  // closed bit of the tail; position step of a whole lap
  bool closed = false;               // (lock)
  WaitQ recvq, sendq;                // (lock)
  char* buf = nullptr;

  std::atomic<std::uint64_t>& stamp(std::uint64_t index) {
    return *reinterpret_cast<std::atomic<std::uint64_t>*>(buf + index * stride);
  }
  void* elem(std::uint64_t index) { return buf + index * stride + elem_off; }
  // waiters: the queue of those waiting to send (send=true) or to receive.
  WaitQ& waiters(bool send) { return send ? sendq : recvq; }
  // next: the position after pos (same lap, or index 0 of the next lap).
  std::uint64_t next(std::uint64_t pos) const {
    std::uint64_t index = pos & (mark - 1);
    return index + 1 < cap ? pos + 1 : (pos & ~(one_lap - 1)) + one_lap;
  }
};

// ring_push / ring_pop: the lock-free send and receive of a buffered channel (no waiting).
// On Ok, *wake says the other side has a waiter to wake: the operation read that before it
// made its value (or its free slot) visible, and took a reference on c for the wake, because
// once visible the other side may finish and drop the last handle to c (a "done" channel, say):
// nothing may touch c after the publication unless it holds a reference. The caller then calls
// ring_wake_owed (after releasing any channel lock it holds). ring_len: elements buffered now.
// ring_may_proceed: after a waiter is published, can a send (send=true) or a receive proceed now
// (room, a value, or closed)? Judged by positions, not stamps, so it pairs with the other side's
// CAS (see chan.cpp, "No lost wake-up").
RingRes ring_push(ChanCore* c, void* src, bool* wake);
RingRes ring_pop(ChanCore* c, void* dst, bool* wake);
std::size_t ring_len(const ChanCore* c);
bool ring_may_proceed(ChanCore* c, bool send);
// ring_wake: wakes one waiter of q, if any, to try again (the caller keeps c alive).
void ring_wake(ChanCore* c, WaitQ& q);
// ring_wake_owed: ring_wake, then drops the reference ring_push / ring_pop took.
void ring_wake_owed(ChanCore* c, WaitQ& q);

// The unbuffered hand-offs, with c->lock held; both leave the lock held.
// send_direct: hand src to a parked receiver sg.
void send_direct(ChanCore* c, Sudog* sg, void* src);
// recv_direct: take from a parked sender sg.
void recv_direct(ChanCore* c, Sudog* sg, void* dst);
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
