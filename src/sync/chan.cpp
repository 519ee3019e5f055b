// chan.cpp: channels (Go's chan.go), with a lock-free ring for buffered ones.
//
// Unbuffered channels are Go's: one lock guards the two wait queues. A send to a parked
// receiver copies straight into the receiver's storage and puts the receiver in the sender's
// runnext; a receive from a parked sender does the mirror image. The waiting side's lock is
// released by g0 only after the G is off its stack (park's unlockf), so a waker can never
// resume a G that is still running.
//
// Buffered channels depart from Go (docs/runtime.md, "Buffered channels"): the elements live in
// a lock-free ring (chan_impl.hpp), so a send and a receive on different Ps touch the lock's
// cache line only to read whether anybody waits. Waiting is Go's shape with a retry: a sender
// that finds the ring full (a receiver that finds it empty) locks, enqueues its Sudog, then
// looks at the ring again and parks only if it still cannot proceed; whoever pushes (pops)
// next wakes one waiter, which tries again. A woken waiter competes with newcomers (no direct
// hand-off), so FIFO holds per sender but waiters are not served strictly in arrival order.
//
// No lost wake-up: the waiter publishes itself (WaitQ::n, then a seq_cst read-modify-write of
// it) and then reads the ring's positions; the other side's CAS on the position is seq_cst and
// is followed by a seq_cst read of n. Either the waiter sees the new position (and does not
// park) or the other side sees the waiter (and wakes it). The positions, not the stamps, decide: a position
// claimed but not yet published means "proceed": the waiter retries and spins for the stamp.
#include <sched.h>

#include <cstdlib>
#include <new>

#include "mpg/errors.hpp"
#include "sync/chan_impl.hpp"

namespace mpg::detail {

void send_direct(ChanCore* c, Sudog* sg, void* src) {
  if (sg->elem) c->ops->move_construct(sg->elem, src);
  sg->success = true;
}

void recv_direct(ChanCore* c, Sudog* sg, void* dst) {
  c->ops->move_construct(dst, sg->elem);
  sg->success = true;
}

void wake_waiter(Sudog* sg) { wake_waiter_on(current_m(), sg); }

void wake_waiter_on(M* m, Sudog* sg) {
  sg->g->param = sg;
  ready_on(m, sg->g);
}

static bool unlock_chan(G*, void* c) {
  static_cast<ChanCore*>(c)->lock.unlock();
  return true;
}

// --- The ring -----------------------------------------------------------------------------

namespace {

// RingWindow: between claiming a position and publishing its stamp, other threads spin on the
// slot, so the goroutine must not be stopped by a preemption signal there (the element's move
// constructor is user code, outside the runtime's text that the signal handler refuses). The
// count is a plain thread-local; the compiler may move the decrement above the stamp's store,
// which is harmless only because that code is the runtime's own, which the handler refuses
// anyway. An element move that throws terminates (ElemOpsFor is noexcept): a claimed slot
// cannot be given back.
struct RingWindow {
  RingWindow() { tls_runtime_locks++; }
  ~RingWindow() { tls_runtime_locks--; }
};

// backoff: another thread has claimed the slot and not yet published it (a few instructions,
// unless the OS took its CPU away).
void backoff(int& spins) {
  if (spins < 10) {
    for (int i = 0; i < (1 << spins); i++) lock_pause();
    spins++;
  } else {
    sched_yield();
  }
}

}  // namespace

RingRes ring_push(ChanCore* c, void* src, bool* wake) {
  RingWindow w;
  int spins = 0;
  std::uint64_t tail = c->tail.load(std::memory_order_relaxed);
  for (;;) {
    if (tail & c->mark) return RingRes::Closed;
    std::uint64_t index = tail & (c->mark - 1);
    std::atomic<std::uint64_t>& stamp = c->stamp(index);
    std::uint64_t st = stamp.load(std::memory_order_acquire);
    if (st == tail) {
      // The slot is free for this lap: claim the position (seq_cst: see "No lost wake-up").
      if (c->tail.compare_exchange_weak(tail, c->next(tail), std::memory_order_seq_cst, std::memory_order_relaxed)) {
        // Read after the claim (the waiter's re-check reads the tail), before the publication.
        if ((*wake = c->waiters(false).waiting())) chan_retain(c);
        c->ops->move_construct(c->elem(index), src);
        stamp.store(tail + 1, std::memory_order_release);  // the last touch of c without a reference
        return RingRes::Ok;
      }
      spins = 0;
    } else if (st + c->one_lap == tail + 1) {
      // The slot still holds the previous lap's element: full, unless a receiver has claimed
      // it and is moving it out.
      if (c->head.load(std::memory_order_acquire) + c->one_lap == tail) return RingRes::Blocked;
      backoff(spins);
      tail = c->tail.load(std::memory_order_relaxed);
    } else {
      backoff(spins);  // another sender took this position: catch up
      tail = c->tail.load(std::memory_order_relaxed);
    }
  }
}

RingRes ring_pop(ChanCore* c, void* dst, bool* wake) {
  RingWindow w;
  int spins = 0;
  std::uint64_t head = c->head.load(std::memory_order_relaxed);
  for (;;) {
    std::uint64_t index = head & (c->mark - 1);
    std::atomic<std::uint64_t>& stamp = c->stamp(index);
    std::uint64_t st = stamp.load(std::memory_order_acquire);
    if (st == head + 1) {
      if (c->head.compare_exchange_weak(head, c->next(head), std::memory_order_seq_cst, std::memory_order_relaxed)) {
        if ((*wake = c->waiters(true).waiting())) chan_retain(c);  // as in ring_push
        void* e = c->elem(index);
        c->ops->move_construct(dst, e);
        c->ops->destroy(e);
        stamp.store(head + c->one_lap, std::memory_order_release);  // the last touch, as in ring_push
        return RingRes::Ok;
      }
      spins = 0;
    } else if (st == head) {
      // Nothing published here: empty, unless a sender has claimed the position already.
      std::uint64_t tail = c->tail.load(std::memory_order_acquire);
      if ((tail & ~c->mark) == head) return (tail & c->mark) ? RingRes::Closed : RingRes::Blocked;
      backoff(spins);
      head = c->head.load(std::memory_order_relaxed);
    } else {
      backoff(spins);
      head = c->head.load(std::memory_order_relaxed);
    }
  }
}

std::size_t ring_len(const ChanCore* c) {
  for (;;) {
    std::uint64_t tail = c->tail.load(std::memory_order_seq_cst);
    std::uint64_t head = c->head.load(std::memory_order_seq_cst);
    if (c->tail.load(std::memory_order_seq_cst) != tail) continue;  // a consistent pair
    std::uint64_t hix = head & (c->mark - 1), tix = tail & (c->mark - 1);
    if (hix < tix) return std::size_t(tix - hix);
    if (hix > tix) return std::size_t(c->cap - hix + tix);
    return (tail & ~c->mark) == head ? 0 : c->cap;
  }
}

bool ring_may_proceed(ChanCore* c, bool send) {
  // The waiter's publication as a seq_cst read-modify-write of the count (enqueue stored it
  // under the lock), so it and the loads below are ordered against the other side's CAS and
  // load of the count by the single total order of seq_cst operations (no fences: TSan does
  // not model them).
  c->waiters(send).n.fetch_add(0, std::memory_order_seq_cst);
  std::uint64_t tail = c->tail.load(std::memory_order_seq_cst);
  if (tail & c->mark) return true;  // closed: a receive drains or ends, a send fails
  std::uint64_t head = c->head.load(std::memory_order_seq_cst);
  if (!send) return tail != head;
  return head + c->one_lap != tail;  // not full
}

void ring_wake(ChanCore* c, WaitQ& q) {
  if (!q.waiting()) return;
  c->lock.lock();
  Sudog* sg = q.dequeue();
  c->lock.unlock();
  if (sg) wake_waiter(sg);
}

void ring_wake_owed(ChanCore* c, WaitQ& q) {
  ring_wake(c, q);
  chan_release(c);
}

// --- Make, retain, release ----------------------------------------------------------------

ChanCore* chan_make(const ElemOps* ops, std::size_t cap) {
  std::size_t align = ops->align < alignof(ChanCore) ? alignof(ChanCore) : ops->align;
  std::size_t header = (sizeof(ChanCore) + align - 1) / align * align;
  std::size_t slot_align = ops->align < 8 ? 8 : ops->align;
  std::size_t elem_off = (8 + ops->align - 1) / ops->align * ops->align;
  std::size_t stride = cap ? (elem_off + ops->size + slot_align - 1) / slot_align * slot_align : 0;
  void* mem = ::operator new(header + stride * cap, std::align_val_t(align));
  ChanCore* c = ::new (mem) ChanCore();
  c->ops = ops;
  c->cap = cap;
  c->stride = stride;
  c->elem_off = elem_off;
  c->buf = static_cast<char*>(mem) + header;
  if (cap) {
    std::uint64_t mark = 1;
    while (mark < cap + 1) mark <<= 1;
    c->mark = mark;
    c->one_lap = mark << 1;
    for (std::size_t i = 0; i < cap; i++) ::new (c->buf + i * stride) std::atomic<std::uint64_t>(i);
  }
  return c;
}

void chan_retain(ChanCore* c) { c->refs.fetch_add(1, std::memory_order_relaxed); }

void chan_release(ChanCore* c) {
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (c->cap) {
    std::uint64_t head = c->head.load(std::memory_order_acquire);
    for (std::size_t n = ring_len(c); n > 0; n--) {
      c->ops->destroy(c->elem(head & (c->mark - 1)));
      head = c->next(head);
    }
  }
  std::size_t align = c->ops->align < alignof(ChanCore) ? alignof(ChanCore) : c->ops->align;
  c->~ChanCore();
  ::operator delete(static_cast<void*>(c), std::align_val_t(align));
}

// --- Buffered send and receive --------------------------------------------------------------

// ring_wait: self waits until the ring may let it proceed (send: room; receive: a value) or is
// closed; returns at once if that is so already once its Sudog is visible.
static void ring_wait(ChanCore* c, bool send, M* m, G* self) {
  Sudog me;
  me.g = self;
  me.c = c;
  WaitQ& q = c->waiters(send);
  c->lock.lock();
  q.enqueue(&me);
  if (ring_may_proceed(c, send)) {
    q.remove(&me);
    c->lock.unlock();
    return;
  }
  park_on(m, self, send ? WaitReason::ChanSend : WaitReason::ChanReceive, unlock_chan, c);
  // Woken by the other side or by close (the waker unlinked the Sudog): the caller tries again.
}

// ring_op: Go's chansend (send: p is the value) or chanrecv (p is the storage) on a buffered
// channel: Ok, Closed, or Blocked (only when !block).
static RingRes ring_op(ChanCore* c, void* p, bool send, bool block) {
  for (;;) {
    // Looked up again after a park: the goroutine may resume on another thread.
    M* m = current_m();
    G* self = m ? m->curg.load(std::memory_order_relaxed) : nullptr;
    bool wake;
    RingRes r = send ? ring_push(c, p, &wake) : ring_pop(c, p, &wake);
    if (r == RingRes::Ok && wake) ring_wake_owed(c, c->waiters(!send));
    if (r != RingRes::Blocked || !block) {
      check_preempt(self);
      return r;
    }
    if (!self)
      throw RuntimeMisuse(send ? "mpg: blocking channel send outside a goroutine"
                               : "mpg: blocking channel receive outside a goroutine");
    ring_wait(c, send, m, self);
  }
}

// --- Unbuffered send and receive ------------------------------------------------------------

// chan_send_impl: Go's chansend. Returns false only when !block and it would block.
static bool chan_send_impl(ChanCore* c, void* src, bool block) {
  if (c->cap) {
    RingRes r = ring_op(c, src, true, block);
    if (r == RingRes::Closed) throw ClosedChannel("send on closed channel");
    return r == RingRes::Ok;
  }
  // One thread-local lookup for the whole operation: nothing below switches before it parks.
  M* m = current_m();
  G* self = m ? m->curg.load(std::memory_order_relaxed) : nullptr;
  c->lock.lock();
  if (c->closed) {
    c->lock.unlock();
    throw ClosedChannel("send on closed channel");
  }
  // Done on the spot (a parked receiver, or a try that fails): a runtime entry, so check for
  // preemption once. A G that parks below was just scheduled when it returns (its flag
  // cleared): no check there.
  Sudog* sg = c->recvq.dequeue();
  if (sg || !block) {
    if (sg) send_direct(c, sg, src);
    c->lock.unlock();
    if (sg) wake_waiter_on(m, sg);
    check_preempt(self);
    return sg != nullptr;
  }
  if (!self) {
    c->lock.unlock();
    throw RuntimeMisuse("mpg: blocking channel send outside a goroutine");
  }
  Sudog me;
  me.g = self;
  me.elem = src;
  me.c = c;
  c->sendq.enqueue(&me);
  park_on(m, self, WaitReason::ChanSend, unlock_chan, c);
  if (!me.success) throw ClosedChannel("send on closed channel");
  return true;
}

void chan_send(ChanCore* c, void* src) { chan_send_impl(c, src, true); }
bool chan_try_send(ChanCore* c, void* src) { return chan_send_impl(c, src, false); }

// chan_recv_impl: Go's chanrecv. Returns Empty only when !block.
static TryRecv chan_recv_impl(ChanCore* c, void* dst, bool block) {
  if (c->cap) {
    RingRes r = ring_op(c, dst, false, block);
    return r == RingRes::Ok ? TryRecv::Value : r == RingRes::Closed ? TryRecv::Closed : TryRecv::Empty;
  }
  M* m = current_m();  // as in chan_send_impl
  G* self = m ? m->curg.load(std::memory_order_relaxed) : nullptr;
  c->lock.lock();
  // Done on the spot (closed, a parked sender, or a try that fails): check for preemption
  // once, as in chan_send_impl.
  bool closed = c->closed;
  Sudog* sg = closed ? nullptr : c->sendq.dequeue();
  if (closed || sg || !block) {
    if (sg) recv_direct(c, sg, dst);
    c->lock.unlock();
    if (sg) wake_waiter_on(m, sg);
    check_preempt(self);
    return closed ? TryRecv::Closed : sg ? TryRecv::Value : TryRecv::Empty;
  }
  if (!self) {
    c->lock.unlock();
    throw RuntimeMisuse("mpg: blocking channel receive outside a goroutine");
  }
  Sudog me;
  me.g = self;
  me.elem = dst;
  me.c = c;
  c->recvq.enqueue(&me);
  park_on(m, self, WaitReason::ChanReceive, unlock_chan, c);
  return me.success ? TryRecv::Value : TryRecv::Closed;
}

bool chan_recv(ChanCore* c, void* dst) { return chan_recv_impl(c, dst, true) == TryRecv::Value; }
TryRecv chan_try_recv(ChanCore* c, void* dst) { return chan_recv_impl(c, dst, false); }

void chan_close(ChanCore* c) {
  if (!c) throw ChannelMisuse("close of nil channel");
  // A receiver on a ring sees the closed bit without the lock, and may then drop the last
  // handle while we still hold the lock and walk the wait queues: hold a reference until done.
  chan_retain(c);
  c->lock.lock();
  if (c->closed) {
    c->lock.unlock();
    chan_release(c);
    throw ChannelMisuse("close of closed channel");
  }
  c->closed = true;
  // Buffered: every later claim of the tail fails; a send that claimed before completes, and
  // receivers drain it.
  if (c->cap) c->tail.fetch_or(c->mark, std::memory_order_seq_cst);
  // Collect every waiter under the lock, wake them after: ready() may take the scheduler lock.
  // (Buffered waiters just try again and see the closed bit.)
  Sudog* wake = nullptr;
  for (WaitQ* q : {&c->recvq, &c->sendq}) {
    while (Sudog* sg = q->dequeue()) {
      sg->success = false;
      sg->next = wake;
      wake = sg;
    }
  }
  c->lock.unlock();
  while (wake) {
    Sudog* next = wake->next;  // read before the G runs and its stack (holding sg) moves on
    wake_waiter(wake);
    wake = next;
  }
  chan_release(c);
}

std::size_t chan_len(const ChanCore* c) { return c->cap ? ring_len(c) : 0; }
std::size_t chan_cap(const ChanCore* c) { return c->cap; }

void block_forever(int reason) {
  if (!current_g()) throw RuntimeMisuse("mpg: operation on a nil channel outside a goroutine");
  park(reason == 0 ? WaitReason::ChanSend : WaitReason::ChanReceiveNil);
  std::abort();  // nothing ever readies a G parked on a nil channel
}

}  // namespace mpg::detail
