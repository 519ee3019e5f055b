// chan.cpp: channels (Go's chan.go). One lock per channel guards the ring buffer and the two
// wait queues. A send to a parked receiver copies straight into the receiver's storage and
// puts the receiver in the sender's runnext; a receive from a parked sender does the mirror
// image. The waiting side's lock is released by g0 only after the G is off its stack (park's
// unlockf), so a waker can never resume a G that is still running.
#include <cstdlib>
#include <new>

#include "mpg/errors.hpp"
#include "sync/chan_impl.hpp"

namespace mpg::detail {

void send_direct(ChanCore* c, Sudog* sg, void* src) {
  (void)c;
  if (sg->elem) c->ops->move_construct(sg->elem, src);
  sg->success = true;
}

void recv_direct(ChanCore* c, Sudog* sg, void* dst) {
  if (c->cap == 0) {
    c->ops->move_construct(dst, sg->elem);
  } else {
    // The buffer is full: take its head, and put the sender's value in the freed slot, so
    // FIFO order holds across buffered and parked values.
    void* s = c->slot(c->recvx);
    c->ops->move_construct(dst, s);
    c->ops->destroy(s);
    c->ops->move_construct(s, sg->elem);
    if (++c->recvx == c->cap) c->recvx = 0;
    c->sendx = c->recvx;
  }
  sg->success = true;
}

void buffer_put(ChanCore* c, void* src) {
  c->ops->move_construct(c->slot(c->sendx), src);
  if (++c->sendx == c->cap) c->sendx = 0;
  c->count.store(c->count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void buffer_take(ChanCore* c, void* dst) {
  void* s = c->slot(c->recvx);
  c->ops->move_construct(dst, s);
  c->ops->destroy(s);
  if (++c->recvx == c->cap) c->recvx = 0;
  c->count.store(c->count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
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

ChanCore* chan_make(const ElemOps* ops, std::size_t cap) {
  std::size_t stride = (ops->size + ops->align - 1) / ops->align * ops->align;
  std::size_t align = ops->align < alignof(ChanCore) ? alignof(ChanCore) : ops->align;
  std::size_t header = (sizeof(ChanCore) + align - 1) / align * align;
  void* mem = ::operator new(header + stride * cap, std::align_val_t(align));
  ChanCore* c = ::new (mem) ChanCore();
  c->ops = ops;
  c->cap = cap;
  c->stride = stride;
  c->buf = static_cast<char*>(mem) + header;
  return c;
}

void chan_retain(ChanCore* c) { c->refs.fetch_add(1, std::memory_order_relaxed); }

void chan_release(ChanCore* c) {
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  std::size_t n = c->count.load(std::memory_order_relaxed);
  for (std::size_t i = 0, x = c->recvx; i < n; i++) {
    c->ops->destroy(c->slot(x));
    if (++x == c->cap) x = 0;
  }
  std::size_t align = c->ops->align < alignof(ChanCore) ? alignof(ChanCore) : c->ops->align;
  c->~ChanCore();
  ::operator delete(static_cast<void*>(c), std::align_val_t(align));
}

// chan_send_impl: Go's chansend. Returns false only when !block and it would block.
static bool chan_send_impl(ChanCore* c, void* src, bool block) {
  // One thread-local lookup for the whole operation: nothing below switches before it parks.
  M* m = current_m();
  G* self = m ? m->curg.load(std::memory_order_relaxed) : nullptr;
  c->lock.lock();
  if (c->closed) {
    c->lock.unlock();
    throw ClosedChannel("send on closed channel");
  }
  // Done on the spot (a parked receiver, room in the buffer, or a try that fails): a runtime
  // entry, so check for preemption once. A G that parks below was just scheduled when it
  // returns (its flag cleared): no check there.
  Sudog* sg = c->recvq.dequeue();
  bool room = !sg && c->count.load(std::memory_order_relaxed) < c->cap;
  if (sg || room || !block) {
    if (sg) send_direct(c, sg, src);
    else if (room) buffer_put(c, src);
    c->lock.unlock();
    if (sg) wake_waiter_on(m, sg);
    check_preempt(self);
    return sg || room;
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
  M* m = current_m();  // as in chan_send_impl
  G* self = m ? m->curg.load(std::memory_order_relaxed) : nullptr;
  c->lock.lock();
  // Done on the spot (closed and drained, a parked sender, a buffered value, or a try that
  // fails): check for preemption once, as in chan_send_impl.
  bool closed = c->closed && c->count.load(std::memory_order_relaxed) == 0;
  Sudog* sg = closed ? nullptr : c->sendq.dequeue();
  bool buffered = !closed && !sg && c->count.load(std::memory_order_relaxed) > 0;
  if (closed || sg || buffered || !block) {
    if (sg) recv_direct(c, sg, dst);
    else if (buffered) buffer_take(c, dst);
    c->lock.unlock();
    if (sg) wake_waiter_on(m, sg);
    check_preempt(self);
    return closed ? TryRecv::Closed : (sg || buffered) ? TryRecv::Value : TryRecv::Empty;
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
  c->lock.lock();
  if (c->closed) {
    c->lock.unlock();
    throw ChannelMisuse("close of closed channel");
  }
  c->closed = true;
  // Collect every waiter under the lock, wake them after: ready() may take the scheduler lock.
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
}

std::size_t chan_len(const ChanCore* c) { return c->count.load(std::memory_order_relaxed); }
std::size_t chan_cap(const ChanCore* c) { return c->cap; }

void block_forever(int reason) {
  if (!current_g()) throw RuntimeMisuse("mpg: operation on a nil channel outside a goroutine");
  park(reason == 0 ? WaitReason::ChanSend : WaitReason::ChanReceiveNil);
  std::abort();  // nothing ever readies a G parked on a nil channel
}

}  // namespace mpg::detail
