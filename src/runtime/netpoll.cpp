// netpoll.cpp: the netpoller (see netpoll.hpp for the design).
#include "runtime/netpoll.hpp"

#include <algorithm>
#include <memory>
#include <vector>

#include "poll/poller.hpp"
#include "poll/sys.hpp"
#include "runtime/sched.hpp"

namespace mpg::detail {

namespace {

// kPollBatch: events taken per epoll_wait (Go takes 128).
constexpr int kPollBatch = 128;
// kDescChunk: PollDescs allocated at a time for the pool.
constexpr int kDescChunk = 128;

struct Netpoll {
  poll::Poller poller;
  Lock lock;                              // registrations, event dispatch, the pool
  std::vector<std::unique_ptr<PollDesc[]>> chunks;
  PollDesc* free = nullptr;
  std::atomic<bool> busy{false};          // an M is inside Poller::wait (one at a time)
  std::atomic<std::int64_t> last{0};      // coarse_nanotime of the last poll (read per poll: ~5 ns, not ~25)
  std::uint64_t run_id = 0;
};

std::atomic<Netpoll*> g_np{nullptr};
std::atomic<int> g_waiters{0};            // Gs parked in a wait slot
Lock g_init_lock;
std::uint64_t g_run_gen = 0;              // (g_init_lock)

void deadline_fire(TimerNode* n, std::uint64_t seq);

Netpoll* np_get() { return g_np.load(std::memory_order_acquire); }

Netpoll* np_ensure() {
  if (Netpoll* np = np_get()) return np;
  std::lock_guard<Lock> lk(g_init_lock);
  if (Netpoll* np = np_get()) return np;
  auto* np = new Netpoll();
  np->run_id = ++g_run_gen;
  np->last.store(coarse_nanotime(), std::memory_order_relaxed);
  g_np.store(np, std::memory_order_release);
  // An M may sleep on the futex until the next timer: have it come back and sleep in epoll. The
  // fence pairs with find_runnable's after it publishes poll_until (see there).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  wake_poller(0);
  return np;
}

PollDesc* desc_alloc(Netpoll* np) {  // np->lock held
  if (!np->free) {
    auto chunk = std::make_unique<PollDesc[]>(kDescChunk);
    for (int i = 0; i < kDescChunk; i++) {
      PollDesc* pd = &chunk[std::size_t(i)];
      pd->next_free = np->free;
      np->free = pd;
    }
    np->chunks.push_back(std::move(chunk));
  }
  PollDesc* pd = np->free;
  np->free = pd->next_free;
  pd->next_free = nullptr;
  return pd;
}

// unblock: the netpollunblock of Go. ioready: readiness (slot -> kReady); else an error (slot ->
// kNil, and a slot with nobody waiting is left alone). Returns the parked G, if any.
G* unblock(std::atomic<std::uintptr_t>& slot, bool ioready) {
  std::uintptr_t old = slot.load(std::memory_order_acquire);
  for (;;) {
    if (old == PollDesc::kReady) {
      // Ready already: readiness still goes through a read-modify-write (kReady -> kReady), so
      // the reader that consumes it synchronizes with this event too and sees what the poller
      // stored before it (PollDesc::hint_off), not only with the event that made it ready.
      if (ioready && !slot.compare_exchange_weak(old, PollDesc::kReady, std::memory_order_acq_rel,
                                                 std::memory_order_acquire))
        continue;
      return nullptr;
    }
    if (old == PollDesc::kNil && !ioready) return nullptr;
    std::uintptr_t nw = ioready ? PollDesc::kReady : PollDesc::kNil;
    if (slot.compare_exchange_weak(old, nw, std::memory_order_acq_rel, std::memory_order_acquire)) {
      if (old > PollDesc::kWait) {
        g_waiters.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: see waiter_left
        return reinterpret_cast<G*>(old);
      }
      return nullptr;
    }
  }
}

// waiter_left: a close, a deadline or an unregistration (not the poller's own events) woke or
// removed a waiter. If none is left while an M sleeps in epoll_wait, that sleep waits for
// nothing any goroutine wants, and with no timer it never ends: the deadlock check would count
// that M as running for ever and the run would hang instead of printing "all goroutines are
// asleep" (NetDeathTest.DeadlockIsReportedAfterTheLastSocketWaiterIsWokenByAClose). Break it;
// the poller decides again. The poller publishes poll_in_epoll and fences (find_runnable), then
// reads the count (netpoll's re-check before an unbounded wait); this side changes the count
// (seq_cst), then reads poll_in_epoll: one of the two sees the other. A spurious break costs one
// eventfd write, and the count reaches zero this way only when the last socket waiter is closed
// or times out.
void waiter_left() {
  if (g_waiters.load(std::memory_order_seq_cst) == 0 && sched->poll_in_epoll.load(std::memory_order_seq_cst))
    netpoll_break();
}

// block_commit: after the G is off its stack, publish it in the slot, unless readiness or an
// error came in between (the slot is no longer kWait): then it runs on at once.
bool block_commit(G* g, void* arg) {
  auto* slot = static_cast<std::atomic<std::uintptr_t>*>(arg);
  std::uintptr_t expect = PollDesc::kWait;
  if (!slot->compare_exchange_strong(expect, reinterpret_cast<std::uintptr_t>(g), std::memory_order_acq_rel))
    return false;
  // The first waiter: make sure some M watches epoll. Without this, a busy M keeps running its
  // queue and an idle one sleeps on its futex until sysmon's 10 ms poll.
  if (g_waiters.fetch_add(1, std::memory_order_seq_cst) == 0) wakep();
  return true;
}

std::atomic<std::uintptr_t>& slot_of(PollDesc* pd, char mode) { return mode == 'r' ? pd->rg : pd->wg; }

// block: Go's netpollblock. True if the descriptor is ready in `mode`; false on an error or
// when woken by one (the caller re-checks).
bool block(PollDesc* pd, char mode) {
  auto& slot = slot_of(pd, mode);
  for (;;) {
    std::uintptr_t v = PollDesc::kReady;
    if (slot.compare_exchange_strong(v, PollDesc::kNil, std::memory_order_acq_rel)) return true;
    v = PollDesc::kNil;
    if (slot.compare_exchange_strong(v, PollDesc::kWait, std::memory_order_acq_rel)) break;
    if (v != PollDesc::kReady && v != PollDesc::kNil)
      fatal("mpg: netpoll: two goroutines wait on one descriptor in one direction", true);
  }
  // Re-check errors after publishing kWait: a close or deadline that came first is seen here; one
  // that comes later finds kWait or the G and wakes it.
  if (netpoll_prepare(pd, mode) == PollErr::None) park(WaitReason::IOWait, &block_commit, &slot);
  std::uintptr_t old = slot.exchange(PollDesc::kNil, std::memory_order_acq_rel);
  if (old > PollDesc::kWait) fatal("mpg: netpoll: corrupted wait slot", true);
  return old == PollDesc::kReady;
}

void ready_if(G* g) {
  if (g) ready(g);
}

// wake_waiters: readies the Gs a close or a deadline took from the wait slots (either may be
// null), then lets a sleeping poller know if no waiter is left.
void wake_waiters(G* gr, G* gw) {
  ready_if(gr);
  ready_if(gw);
  if (gr || gw) waiter_left();
}

void deadline_fire(TimerNode* n, std::uint64_t seq) {
  auto* pd = static_cast<PollDesc*>(n->arg);
  G* g = nullptr;
  {
    std::lock_guard<Lock> lk(pd->lock);
    PollTimers* ts = pd->timers.get();  // set before n was first armed, never reset
    bool read = n == &ts->rt;
    std::uint64_t& armed = read ? ts->rseq : ts->wseq;
    if (armed != seq) return;  // the deadline moved (or the descriptor closed) meanwhile
    armed = 0;
    (read ? pd->rd : pd->wd).store(-1, std::memory_order_release);
    g = unblock(read ? pd->rg : pd->wg, false);
  }
  if (g) {
    ready(g);
    waiter_left();
  }
}

// set_one: one direction of netpoll_set_deadline; pd->lock held. Returns a G to wake.
G* set_one(PollDesc* pd, std::int64_t d, bool read) {
  (read ? pd->rd : pd->wd).store(d, std::memory_order_release);
  PollTimers* ts = pd->timers.get();
  if (!ts && d > 0) {
    pd->timers = std::make_unique<PollTimers>();
    ts = pd->timers.get();
    ts->rt.fire = ts->wt.fire = &deadline_fire;
    ts->rt.arg = ts->wt.arg = pd;
  }
  if (ts) {
    TimerNode& t = read ? ts->rt : ts->wt;
    std::uint64_t& armed = read ? ts->rseq : ts->wseq;
    if (armed) {
      timer_stop(&t);
      armed = 0;
    }
    if (d > 0) {
      armed = t.next_seq();
      timer_arm(&t, d);
    }
  }
  return d < 0 ? unblock(read ? pd->rg : pd->wg, false) : nullptr;
}

}  // namespace

void (*netpoll_test_hook)() = nullptr;
PollDesc* netpoll_test_hook_arg = nullptr;

void GList::push(G* g) {
  if (!g) return;
  g->schedlink = nullptr;
  if (tail) tail->schedlink = g;
  else head = g;
  tail = g;
  ++n;
}

PollDesc* netpoll_open(int fd, int* err, const void* hint) {
  return netpoll_open_notify(fd, nullptr, const_cast<void*>(hint), nullptr, err);
}

PollDesc* netpoll_open_notify(int fd, NotifyFn notify, void* arg, PollDesc** publish, int* err) {
  Netpoll* np = np_ensure();
  std::unique_lock<Lock> lk(np->lock);
  PollDesc* pd = desc_alloc(np);
  pd->fd = fd;
  pd->rg.store(PollDesc::kNil, std::memory_order_relaxed);
  pd->wg.store(PollDesc::kNil, std::memory_order_relaxed);
  pd->closing.store(false, std::memory_order_relaxed);
  pd->hint_off.store(false, std::memory_order_relaxed);
  pd->rd.store(0, std::memory_order_relaxed);
  pd->wd.store(0, std::memory_order_relaxed);
  pd->notify = notify;  // before the add: its first event may come at once (still under the lock)
  pd->notify_arg = arg;
  if (publish) *publish = pd;
  int e = np->poller.add(fd, poll::kWantRead | poll::kWantWrite | poll::kEdge, pd);
  if (e != 0) {
    pd->notify = nullptr;
    if (publish) *publish = nullptr;
    pd->next_free = np->free;
    np->free = pd;
    *err = e;
    return nullptr;
  }
  // A notified descriptor waits for as long as it is registered: the Ms must keep polling.
  bool first = notify && g_waiters.fetch_add(1, std::memory_order_seq_cst) == 0;
  lk.unlock();
  if (first) wakep();
  return pd;
}

void netpoll_close(PollDesc* pd) {
  Netpoll* np = np_get();
  bool notified;
  {
    std::lock_guard<Lock> lk(np->lock);
    np->poller.remove(pd->fd);
    notified = pd->notify != nullptr;
    if (notified) {
      g_waiters.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: see waiter_left
      pd->notify = nullptr;
      pd->notify_arg = nullptr;
    }
    pd->fd = -1;
    pd->next_free = np->free;
    np->free = pd;
  }
  if (notified) waiter_left();
}

PollErr netpoll_prepare(PollDesc* pd, char mode) {
  if (pd->closing.load(std::memory_order_acquire)) return PollErr::Closing;
  if ((mode == 'r' ? pd->rd : pd->wd).load(std::memory_order_acquire) < 0) return PollErr::Timeout;
  return PollErr::None;
}

PollErr netpoll_wait(PollDesc* pd, char mode) {
  PollErr e = netpoll_prepare(pd, mode);
  if (e != PollErr::None) return e;
  while (!block(pd, mode)) {
    e = netpoll_prepare(pd, mode);
    if (e != PollErr::None) return e;
  }
  return PollErr::None;
}

SendResult netpoll_send_all(int fd, PollDesc* pd, const void* buf, std::size_t n) {
  const auto* p = static_cast<const char*>(buf);
  SendResult r;
  while (r.done < n) {
    ssize_t k = sys::send(fd, p + r.done, n - r.done, MSG_NOSIGNAL);
    if (k >= 0) {
      r.done += std::size_t(k);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      r.err = errno;
      break;
    }
    r.perr = netpoll_wait(pd, 'w');
    if (r.perr != PollErr::None) break;
  }
  return r;
}

void netpoll_set_deadline(PollDesc* pd, std::int64_t when, char mode) {
  std::int64_t d = when == 0 ? 0 : (when <= nanotime() ? -1 : when);
  G* gr = nullptr;
  G* gw = nullptr;
  {
    std::lock_guard<Lock> lk(pd->lock);
    if (pd->closing.load(std::memory_order_relaxed)) return;
    if (mode == 'r' || mode == 'b') gr = set_one(pd, d, true);
    if (mode == 'w' || mode == 'b') gw = set_one(pd, d, false);
  }
  wake_waiters(gr, gw);
}

void netpoll_evict(PollDesc* pd) {
  G* gr;
  G* gw;
  {
    std::lock_guard<Lock> lk(pd->lock);
    pd->closing.store(true, std::memory_order_release);
    // Disarm the deadlines: a fire already running waits for the lock, then finds its seq no
    // longer armed. The seqs stay 0 through the pool (every caller evicts before netpoll_close).
    if (PollTimers* ts = pd->timers.get()) {
      if (ts->rseq) timer_stop(&ts->rt);
      if (ts->wseq) timer_stop(&ts->wt);
      ts->rseq = ts->wseq = 0;
    }
    gr = unblock(pd->rg, false);
    gw = unblock(pd->wg, false);
  }
  wake_waiters(gr, gw);
}

std::uint64_t netpoll_run_id() {
  Netpoll* np = np_get();
  return np ? np->run_id : 0;
}

bool netpoll_inited() { return np_get() != nullptr; }

bool netpoll_active() { return g_waiters.load(std::memory_order_relaxed) > 0 && np_get() != nullptr; }

std::int64_t netpoll_last() {
  Netpoll* np = np_get();
  return np ? np->last.load(std::memory_order_relaxed) : 0;
}

G* netpoll(std::int64_t delay_ns, int* n) {
  *n = 0;
  Netpoll* np = np_get();
  if (!np || np->busy.exchange(true, std::memory_order_acquire)) return nullptr;
  // An unbounded wait (no timer) with no waiter left would never end. The count may have dropped
  // to zero since the caller looked, in a non-blocking poll on another M that released `busy`
  // after its decrement (found by review): the acquire above makes that decrement visible
  // here. A drop by a close or deadline from now on breaks the wait (waiter_left).
  if (delay_ns < 0 && g_waiters.load(std::memory_order_seq_cst) == 0) delay_ns = 0;
  poll::Event evs[kPollBatch];
  int k = np->poller.wait_ns(std::span<poll::Event>(evs, kPollBatch), delay_ns);
  GList list;
  if (k > 0 && netpoll_test_hook) netpoll_test_hook();
  if (k > 0) {
    // Resolve and deliver under the registration lock: an event of a registration removed
    // meanwhile is dropped, never delivered to the PollDesc's next user.
    std::lock_guard<Lock> lk(np->lock);
    for (int i = 0; i < k; i++) {
      auto* pd = static_cast<PollDesc*>(np->poller.resolve(evs[i]));
      if (!pd) continue;
      std::uint32_t r = evs[i].ready;
      bool hup = r & (poll::kHangup | poll::kError);
      if (hup || (r & poll::kUrgent)) pd->hint_off.store(true, std::memory_order_relaxed);
      if (r & (poll::kReadable | poll::kHangup | poll::kError)) {
        if (pd->notify) pd->notify(pd->notify_arg, hup, list);
        else if (G* g = unblock(pd->rg, true)) {
          if (pd->notify_arg) __builtin_prefetch(pd->notify_arg, 1);  // the hint (PollDesc::notify_arg)
          list.push(g);
        }
      }
      if (r & (poll::kWritable | poll::kHangup | poll::kError)) list.push(unblock(pd->wg, true));
    }
  }
  np->last.store(coarse_nanotime(), std::memory_order_relaxed);
  np->busy.store(false, std::memory_order_release);
  *n = list.n;
  return list.head;
}

void netpoll_break() {
  if (Netpoll* np = np_get()) np->poller.wake();
}

void inject_glist(G* list, int n) {
  if (!list) return;
  for (G* g = list; g; g = g->schedlink) {
    g->set_status(GStatus::Waiting, GStatus::Runnable);
    // A G that parked mid-stack (not one spawn_polled made: it starts at its stack's top).
    if (g->started) g->io_woken = true;
  }
  M* m = current_m();
  P* p = m ? m->p : nullptr;
  // Gs for idle Ps go to the global queue, with an M started for each such P (Go's
  // injectglist); the rest onto this P's ring. While this process's threads wait for a CPU,
  // spread_cap is below procs (cpuwait.cpp) and only enough go to the global queue to bring the
  // running Ps up to it. A list readied without a P (sysmon's poll) goes there whole.
  int cap = sched->spread_cap.load(std::memory_order_relaxed);
  bool capped = cap < sched->procs;
  // room: idle Ps that may get readied Gs, given how many are idle now.
  auto room = [&](int idle) { return capped ? std::clamp(cap - (sched->procs - idle), 0, idle) : idle; };
  int to_global = p ? std::min(n, room(sched->npidle.load(std::memory_order_relaxed))) : n;
  G* batch[kPollBatch];
  int started = 0;
  while (list && to_global > 0) {
    int b = 0;
    while (list && b < to_global && b < kPollBatch) {
      batch[b++] = list;
      list = list->schedlink;
    }
    globrunqput_batch(batch, std::uint32_t(b));
    to_global -= b;
    started += b;
  }
  // Count the idle Ps after the push (it took the lock): a P that went idle before it is
  // counted, and one that goes idle after it sees the Gs in the global queue. Without a P,
  // nobody here runs the list, so at least one idle P gets an M whatever the cap.
  if (started > 0) {
    int idle = sched->npidle.load(std::memory_order_relaxed);
    int starts = room(idle);
    if (!p && idle > 0) starts = std::max(starts, 1);
    for (int i = 0; i < started && i < starts; i++) startm(nullptr, false);
  }
  while (list) {
    G* g = list;
    list = g->schedlink;
    g->schedlink = nullptr;
    runqput(p, g, false);
  }
  // Go's hedge, a spinner for what the ring now holds; under the cap only while there is room.
  if (p && (!capped || room(sched->npidle.load(std::memory_order_relaxed)) > 0)) wakep();
}

void netpoll_shutdown() {
  std::lock_guard<Lock> lk(g_init_lock);
  delete g_np.exchange(nullptr, std::memory_order_acq_rel);
  g_waiters.store(0, std::memory_order_relaxed);
}

}  // namespace mpg::detail
