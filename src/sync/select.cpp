// select.cpp: Go's selectgo. 
//
//  1. Put the channel cases in a random poll order and in lock order (by address; a channel
//     named twice is locked once), and lock them all.
//  2. Poll in random order; the first case that can proceed runs, the locks are released.
//  3. With a default case, it runs now.
//  4. Otherwise enqueue a Sudog on every channel, open the G's claim word (select_done) and
//     park; g0 arms the timeout timer (if any) and then releases the locks.
//  5. The first waker wins the claim by CAS (a channel, under its lock, or the timer) and
//     readies the G; everyone else skips its Sudog.
//  6. Awake: stop the timer, lock all again, unlink the Sudogs that did not fire, unlock.
// A buffered channel's case (its ring is lock-free, see chan.cpp) is polled with the ring's own
// operations; in pass 2, after the Sudogs are published, the rings are looked at once more
// (ring_may_proceed, the waiter's half of "No lost wake-up"), and a wake from a buffered
// channel carries no value: the select polls again, with what is left of its timeout, and
// passes the wake on if it does not use it (OwedWake).
#include <alloca.h>

#include <algorithm>

#include "mpg/errors.hpp"
#include "mpg/runtime.hpp"
#include "mpg/select.hpp"
#include "sync/chan_impl.hpp"

namespace mpg::detail {

namespace {

thread_local FastRand select_rand{0x1234567};

struct Locked {
  ChanCore** chans;  // distinct channels in lock order
  int n;
};

void sellock(const Locked& l) {
  for (int i = 0; i < l.n; i++) l.chans[i]->lock.lock();
}
void selunlock(const Locked& l) {
  for (int i = l.n; i-- > 0;) l.chans[i]->lock.unlock();
}
bool selunlock_park(G*, void* arg) {
  selunlock(*static_cast<Locked*>(arg));
  return true;
}

// OwedWake: a wake from a buffered channel carries no value: it says "the ring changed, try
// again", and the waker woke only this select. If the select then completes some other way (an
// other case, a throw, a timeout), it passes the wake on to the next waiter of that queue, or a
// plain waiter queued behind it would sleep beside a value (or room) nobody tells it of.
struct OwedWake {
  ChanCore* c = nullptr;
  bool send = false;  // woken from the send queue (room), else the receive queue (a value)
  void settle(ChanCore* done, bool done_send) {
    if (c == done && send == done_send) c = nullptr;  // used it
  }
  ~OwedWake() {
    if (c) ring_wake(c, c->waiters(send));
  }
};

FastRand& rng() {
  M* m = current_m();
  return m ? m->rand : select_rand;
}

}  // namespace

static SelectResult select_go(SelectCase* cases, int n);

SelectResult select_impl(SelectCase* cases, int n) {
  SelectResult r = select_go(cases, n);
  check_preempt();
  return r;
}

static SelectResult select_go(SelectCase* cases, int n) {
  int* order = static_cast<int*>(alloca(sizeof(int) * std::size_t(n > 0 ? n : 1)));
  int nchan = 0, default_index = -1, timeout_index = -1;
  std::int64_t timeout_ns = 0;
  for (int i = 0; i < n; i++) {
    switch (cases[i].kind) {
      case CaseKind::Recv:
      case CaseKind::Send:
        if (cases[i].c) order[nchan++] = i;  // a nil channel's case never fires
        break;
      case CaseKind::Default: default_index = i; break;
      case CaseKind::Timeout:
        if (timeout_index < 0 || cases[i].timeout_ns < timeout_ns) {
          timeout_index = i;
          timeout_ns = cases[i].timeout_ns;
        }
        break;
    }
  }
  // Random poll order (Fisher-Yates).
  FastRand& r = rng();
  for (int i = nchan - 1; i > 0; i--) std::swap(order[i], order[r.below(std::uint32_t(i + 1))]);
  // Lock order: distinct channels by address.
  ChanCore** chans = static_cast<ChanCore**>(alloca(sizeof(ChanCore*) * std::size_t(nchan > 0 ? nchan : 1)));
  for (int i = 0; i < nchan; i++) chans[i] = cases[order[i]].c;
  std::sort(chans, chans + nchan);
  Locked locked{chans, int(std::unique(chans, chans + nchan) - chans)};

  G* g = current_g();
  if (nchan == 0) {
    if (default_index >= 0) return {default_index, false};
    if (timeout_index >= 0) {
      if (timeout_ns > 0) mpg::sleep_for(std::chrono::nanoseconds(timeout_ns));
      return {timeout_index, false};
    }
    if (!g) throw RuntimeMisuse("mpg: select with no cases outside a goroutine");
    park(WaitReason::SelectNoCases);
    std::abort();
  }

  std::int64_t deadline = timeout_index >= 0 && timeout_ns > 0 ? nanotime() + timeout_ns : 0;
  Sudog* sgs = static_cast<Sudog*>(alloca(sizeof(Sudog) * std::size_t(nchan)));
  // No reference of our own is taken on the channels: the case objects of mpg::select (RecvCase,
  // SendCase) hold Chan handles until it returns, so a partner that drops its handle as soon as
  // a case completes cannot free a channel the select still unlocks, unlinks or passes a wake on
  // (ChanRing.ChannelMayDieAsSoonAsASelectCompletedOnIt).
  OwedWake owed;
  for (;;) {
    // Pass 1: is any case ready?
    sellock(locked);
    for (int k = 0; k < nchan; k++) {
      int i = order[k];
      SelectCase& sc = cases[i];
      ChanCore* c = sc.c;
      bool send = sc.kind == CaseKind::Send;
      if (c->cap) {
        bool wake = false;
        RingRes r = send ? ring_push(c, sc.elem, &wake) : ring_pop(c, sc.elem, &wake);
        if (r == RingRes::Blocked) continue;
        selunlock(locked);
        owed.settle(c, send);
        if (r == RingRes::Closed) {
          if (send) throw ClosedChannel("send on closed channel");
          return {i, false};
        }
        if (wake) ring_wake_owed(c, c->waiters(!send));
        return {i, true};
      }
      if (c->closed) {
        selunlock(locked);
        if (send) throw ClosedChannel("send on closed channel");
        return {i, false};
      }
      if (Sudog* sg = c->waiters(!send).dequeue()) {
        if (send) send_direct(c, sg, sc.elem);
        else recv_direct(c, sg, sc.elem);
        selunlock(locked);
        wake_waiter(sg);
        return {i, true};
      }
    }
    if (default_index >= 0) {
      selunlock(locked);
      return {default_index, false};
    }
    if (!g) {
      selunlock(locked);
      throw RuntimeMisuse("mpg: blocking select outside a goroutine");
    }
    std::int64_t left = deadline ? deadline - nanotime() : 0;
    if (timeout_index >= 0 && left <= 0) {
      selunlock(locked);
      return {timeout_index, false};
    }

    // Pass 2: wait on every channel.
    std::uint64_t token = timeout_index >= 0 ? g->timer.next_seq() : 0;
    g->param = nullptr;
    g->select_done.store(token << 1, std::memory_order_release);
    bool buffered = false;
    for (int k = 0; k < nchan; k++) {
      int i = order[k];
      Sudog* sg = ::new (&sgs[k]) Sudog();
      sg->g = g;
      sg->elem = cases[i].elem;
      sg->c = cases[i].c;
      sg->case_index = i;
      sg->is_select = true;
      buffered |= cases[i].c->cap != 0;
      cases[i].c->waiters(cases[i].kind == CaseKind::Send).enqueue(sg);
    }
    auto unlink_all = [&](Sudog* fired) {
      for (int k = 0; k < nchan; k++) {
        Sudog* sg = &sgs[k];
        if (sg != fired) sg->c->waiters(cases[sg->case_index].kind == CaseKind::Send).remove(sg);
      }
    };
    if (buffered) {
      bool ready = false;
      for (int k = 0; k < nchan && !ready; k++) {
        ChanCore* c = cases[order[k]].c;
        ready = c->cap && ring_may_proceed(c, cases[order[k]].kind == CaseKind::Send);
      }
      if (ready) {  // a ring changed before our Sudogs were visible: poll again
        unlink_all(nullptr);
        selunlock(locked);
        continue;
      }
    }
    if (timeout_index >= 0)
      park_with_timer(WaitReason::Select, selunlock_park, &locked, &g->timer, nanotime() + left);
    else
      park(WaitReason::Select, selunlock_park, &locked);

    // Awake: one waker won the claim. Unlink the rest.
    Sudog* fired = static_cast<Sudog*>(g->param);
    if (timeout_index >= 0) timer_stop(&g->timer);
    sellock(locked);
    unlink_all(fired);
    selunlock(locked);
    if (!fired) return {timeout_index, false};
    if (fired->c->cap) {  // a buffered channel changed: poll again (and owe the wake until used)
      owed.c = fired->c;
      owed.send = cases[fired->case_index].kind == CaseKind::Send;
      continue;
    }
    if (cases[fired->case_index].kind == CaseKind::Send && !fired->success)
      throw ClosedChannel("send on closed channel");
    return {fired->case_index, fired->success};
  }
}

}  // namespace mpg::detail
