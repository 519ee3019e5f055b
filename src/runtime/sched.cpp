// sched.cpp: the scheduler: how an M finds a G to run, and how it sleeps when there is none.
//
// The problem. Gs become runnable on one thread (spawn, a channel send, a timer) while other
// threads may be idle. Waking an idle thread costs a futex call (~2-5 us); not waking one when
// work exists loses parallelism, and in the worst case (the only running M parks) loses the
// wake-up altogether. Waking one for every new G makes a ping-pong pair bounce across CPUs.
//
// The approach (Go's proc.go, which this file follows mechanism for mechanism):
//  - Work lives on a P: a 256-slot lock-free ring plus runnext, a one-slot "run me next" that a
//    G readied by the running G takes, inheriting the time slice. A global queue under
//    sched->lock takes overflow and work from threads without a P.
//  - An M holding a P looks for work in a fixed order (find_runnable): due timers, the global
//    queue every 61st tick (fairness), runnext and the local ring, the Gs preempted on this M
//    (alternating with one global G or a balancing steal), the global queue, stealing.
//  - An M that looks for work "spins". At most one new spinner is started at a time (wakep),
//    and an M may only start spinning while spinners are fewer than half the busy Ps, so idle
//    CPUs do not burn on empty queues.
//  - Spinning to non-spinning is the delicate step. A submitter does: 1) publish the G (ring or
//    global queue), 2) a full fence, 3) if there are idle Ps and no spinner, start one. A spinner
//    that gives up does the reverse: 1) release its P, 2) decrement nmspinning (seq_cst), 3)
//    re-check every run queue, and take a P back if one has work. Either the submitter sees the
//    spinner, or the spinner's re-check sees the G: a wake-up cannot fall between them (Go
//    issue 43997 is what happens when step 3 is skipped).
//  - Timers and the network: each P has a timer heap; at most one idle M (the poller) sleeps
//    until the earliest timer of all Ps, in epoll_wait once the netpoller exists (netpoll.hpp),
//    else on a futex; an earlier new timer breaks its sleep (wake_poller). An M that runs out
//    of work polls the network without blocking before it steals (Go's order).
//  - Deadlock: when the last M goes idle with no timer pending, nothing can ever run again:
//    checkdead prints Go's message and the goroutine dump and exits 2.
#include "runtime/sched.hpp"

#include <sched.h>
#include <time.h>

#include <cstdio>
#include <cstring>

#include "mpg/errors.hpp"
#include "runtime/netpoll.hpp"

namespace mpg::detail {

Sched* sched = nullptr;

namespace {
thread_local M* tls_m = nullptr;
constexpr int kStealTries = 4;
// kRunnextStealWaitNs: a thief's sleep before it takes a running P's runnext (Go's usleep(3)).
constexpr long kRunnextStealWaitNs = 3000;
constexpr int kGlobalBatchMax = int(kLocalQueueSize / 2);
}  // namespace

__attribute__((noinline)) M* current_m() {
  asm volatile("" ::: "memory");
  return tls_m;
}
__attribute__((noinline)) G* current_g() {
  asm volatile("" ::: "memory");
  M* m = tls_m;
  return m ? m->curg.load(std::memory_order_relaxed) : nullptr;
}
void set_current_m(M* m) { tls_m = m; }

// ---------------------------------------------------------------------------------------------
// Run queues.

void globrunqput_batch(G** gs, std::uint32_t n) {
  std::lock_guard<Lock> lk(sched->lock);
  for (std::uint32_t i = 0; i < n; i++) sched->runq.push_back(gs[i]);
  sched->runqsize.fetch_add(n, std::memory_order_relaxed);
}

void runqput(P* p, G* g, bool next) {
  if (next) {
    G* old = p->runnext.exchange(g, std::memory_order_acq_rel);
    if (!old) return;
    g = old;  // kick the old runnext out to the tail of the ring
  }
  for (;;) {
    if (p->runq.push(g)) return;
    G* half[kLocalQueueSize / 2 + 1];
    if (p->runq.take_half(half)) {
      half[kLocalQueueSize / 2] = g;
      globrunqput_batch(half, kLocalQueueSize / 2 + 1);
      return;
    }
  }
}

// runqget: runnext first (inherits the time slice), then the ring.
G* runqget(P* p, bool* inherit) {
  G* next = p->runnext.load(std::memory_order_relaxed);
  if (next && p->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acq_rel)) {
    *inherit = true;
    return next;
  }
  *inherit = false;
  return p->runq.pop();
}

// runq_empty: true only if p had no runnable G at one instant (Go's runqempty: a G moving from
// runnext to the ring between two reads must not look like an empty queue).
bool runq_empty(P* p) {
  for (;;) {
    std::uint32_t h = p->runq.head_acquire();
    std::uint32_t t = p->runq.tail_acquire();
    G* next = p->runnext.load(std::memory_order_acquire);
    if (t == p->runq.tail_acquire()) return h == t && next == nullptr;
  }
}

// globrunqget: takes a batch from the global queue (lock held): one to return, the rest into
// p's ring. max 0 means "a fair share".
static G* globrunqget(P* p, int max) {
  std::uint32_t sz = sched->runqsize.load(std::memory_order_relaxed);
  if (sz == 0) return nullptr;
  int n = int(sz / std::uint32_t(sched->procs)) + 1;
  if (n > int(sz)) n = int(sz);
  if (max > 0 && n > max) n = max;
  if (n > kGlobalBatchMax) n = kGlobalBatchMax;
  sched->runqsize.fetch_sub(std::uint32_t(n), std::memory_order_relaxed);
  G* g = sched->runq.pop();
  for (int i = 1; i < n; i++) {
    G* g2 = sched->runq.pop();
    if (!p->runq.push(g2)) {  // cannot happen with an empty ring; keep the G safe regardless
      sched->runq.push_front(g2);
      sched->runqsize.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return g;
}

// runqsteal: steals half of p2's ring (or, on the last pass, its runnext) into pp's ring.
static G* runqsteal(P* pp, P* p2, bool steal_runnext, std::uint32_t max = kLocalQueueSize) {
  std::uint32_t t = pp->runq.tail_relaxed();
  std::uint32_t n = p2->runq.grab(pp->runq, t, max);
  if (n == 0) {
    if (!steal_runnext) return nullptr;
    G* next = p2->runnext.load(std::memory_order_acquire);
    if (!next) return nullptr;
    // p2's owner is likely about to run its runnext (a channel hand-off takes ~100 ns). Give it
    // time first, as Go does with usleep(3): a real sleep (the kernel's timer slack makes it
    // ~50 us), not a spin. A thief spinning here for 3 us at a time, then retrying, slowed a
    // channel ping-pong between two goroutines on the other P from ~150 to ~240 ns per round
    // trip at procs=2 and stole the pair apart ~25x as often (docs/runtime.md, "Stealing").
    struct timespec ts{0, kRunnextStealWaitNs};
    M* self = current_m();
    if (self) self->idle_begin();  // a sleep, not a wait for a CPU (cpuwait.cpp)
    ::nanosleep(&ts, nullptr);
    if (self) self->idle_end();
    // Look before the CAS: a failing CAS would still take the line from its owner.
    if (p2->runnext.load(std::memory_order_relaxed) != next ||
        !p2->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acq_rel))
      return nullptr;
    pp->steals.fetch_add(1, std::memory_order_relaxed);
    pp->stolen.fetch_add(1, std::memory_order_relaxed);
    return next;
  }
  pp->steals.fetch_add(1, std::memory_order_relaxed);
  pp->stolen.fetch_add(n, std::memory_order_relaxed);
  n--;
  G* g = pp->runq.slot(t + n);
  if (n > 0) pp->runq.publish(t + n);
  return g;
}

// ---------------------------------------------------------------------------------------------
// Idle Ps and Ms (sched->lock held for all of these).

static void pidleput(P* p) {
  p->status.store(PStatus::Idle, std::memory_order_release);
  p->link = sched->pidle;
  sched->pidle = p;
  sched->npidle.fetch_add(1, std::memory_order_seq_cst);
}
P* pidleget() {
  P* p = sched->pidle;
  if (p) {
    sched->pidle = p->link;
    p->link = nullptr;
    sched->npidle.fetch_sub(1, std::memory_order_seq_cst);
  }
  return p;
}
static void mput(M* m) {
  m->link = sched->midle;
  sched->midle = m;
  sched->nmidle++;
}
static M* mget() {
  M* m = sched->midle;
  if (m) {
    sched->midle = m->link;
    m->link = nullptr;
    sched->nmidle--;
  }
  return m;
}

static void pin_to_cpu(M* m, P* p) {
  if (!sched->pin_procs || sched->cpus.empty()) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(sched->cpus[std::size_t(p->id) % sched->cpus.size()], &set);
  sched_setaffinity(0, sizeof(set), &set);
  (void)m;
}

void acquirep(M* m, P* p) {
  if (sched->sysmon_deep.load(std::memory_order_relaxed)) sysmon_wake();
  P* prev = m->p;
  m->p = p;
  p->m.store(m, std::memory_order_release);  // sysmon reads the M through it (TSan, CI)
  p->status.store(PStatus::Running, std::memory_order_release);
  if (prev != p) pin_to_cpu(m, p);
}
P* releasep(M* m) {
  P* p = m->p;
  m->p = nullptr;
  p->m.store(nullptr, std::memory_order_relaxed);
  return p;
}

// startm: runs p (an idle P if null) on an idle or new M. spinning: the caller already counted
// the new M in nmspinning.
void startm(P* p, bool spinning) {
  sched->lock.lock();
  if (!p) {
    p = pidleget();
    if (!p) {
      sched->lock.unlock();
      if (spinning) sched->nmspinning.fetch_sub(1, std::memory_order_seq_cst);
      return;
    }
  }
  M* nm = mget();
  sched->lock.unlock();
  if (!nm) {
    newm(p, spinning);
    return;
  }
  nm->spinning = spinning;
  nm->nextp = p;
  nm->park.wake();
}

void wakep() {
  // Step 2 of the submitter's protocol: the G is published; now a full fence, then look.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  wakep_unfenced();
}

void wakep_unfenced() {
  if (sched->npidle.load(std::memory_order_relaxed) == 0) return;
  if (sched->nmspinning.load(std::memory_order_relaxed) != 0) return;
  int zero = 0;
  if (!sched->nmspinning.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) return;
  startm(nullptr, true);
}

// stopm: puts m on the idle list and sleeps until someone hands it a P (or the run ends).
void stopm(M* m) {
  if (m->resume) fatal("mpg: an M stops while its preempted G waits to resume", true);
  sched->lock.lock();
  mput(m);
  checkdead();
  sched->lock.unlock();
  m->sleep_on_park();
  sched->nparks.fetch_add(1, std::memory_order_relaxed);
  if (m->nextp) {
    acquirep(m, m->nextp);
    m->nextp = nullptr;
  }
}

void handoffp(P* p) {
  gfree_trim(p);  // the caller owns p (it released it, or sysmon won it from a blocking call)
  if (!runq_empty(p) || sched->runqsize.load(std::memory_order_relaxed) != 0) {
    startm(p, false);
    return;
  }
  int zero = 0;
  if (sched->nmspinning.load() + sched->npidle.load() == 0 &&
      sched->nmspinning.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) {
    startm(p, true);
    return;
  }
  sched->lock.lock();
  if (sched->runqsize.load(std::memory_order_relaxed) != 0) {
    sched->lock.unlock();
    startm(p, false);
    return;
  }
  pidleput(p);
  sched->lock.unlock();
  if (std::int64_t w = p->timers.when0.load(std::memory_order_acquire)) wake_poller(w);
}

static void become_spinning(M* m) {
  m->spinning = true;
  sched->nmspinning.fetch_add(1, std::memory_order_seq_cst);
}
void reset_spinning(M* m) {
  m->spinning = false;
  sched->nmspinning.fetch_sub(1, std::memory_order_seq_cst);
  // The last spinner found work: there may be more, so start a replacement.
  wakep();
}

// ---------------------------------------------------------------------------------------------
// The timer poller.

void wake_poller(std::int64_t when) {
  std::int64_t pu = sched->poll_until.load(std::memory_order_acquire);
  if (pu == 0) {
    wakep();  // nobody sleeps on timers: a spinner will find out who should
  } else if (when < pu) {
    break_poller();
  }
}

void break_poller() {
  // poll_in_epoll is written before poll_until is published, so a waker that saw poll_until
  // set sees how that sleeper sleeps.
  if (sched->poll_in_epoll.load(std::memory_order_acquire)) netpoll_break();
  else sched->poll_note.wake();
}

// take_list_head: the first G of a netpoll list made runnable for the caller; the rest injected.
static G* take_list_head(G* list, int n) {
  G* g = list;
  G* rest = g->schedlink;
  g->schedlink = nullptr;
  g->set_status(GStatus::Waiting, GStatus::Runnable);
  inject_glist(rest, n - 1);
  return g;
}

static std::int64_t earliest_timer() {
  std::int64_t best = 0;
  for (P* p : sched->allp) {
    std::int64_t w = p->timers.when0.load(std::memory_order_acquire);
    if (w != 0 && (best == 0 || w < best)) best = w;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// The search.

static G* steal_work(M* m, bool* new_work) {
  P* pp = m->p;
  std::uint32_t n = std::uint32_t(sched->procs);
  *new_work = false;
  for (int i = 0; i < kStealTries; i++) {
    bool last = i == kStealTries - 1;
    std::uint32_t start = m->rand.below(n);
    for (std::uint32_t k = 0; k < n; k++) {
      if (sched->exiting.load(std::memory_order_relaxed)) return nullptr;
      P* p2 = sched->allp[start + k < n ? start + k : start + k - n];
      if (p2 == pp) continue;
      if (last) {
        // due(): the coarse clock first. A server has a deadline timer on every P, so this read
        // the precise clock per P per failed search; with the netpoller's stamp, the vDSO clock
        // was ~1.5% of the goroutine HTTP server's CPU, 0.7-1.0% after (perf, 1,000 conns).
        std::int64_t w = p2->timers.when0.load(std::memory_order_acquire);
        if (std::int64_t now; w != 0 && due(w, &now)) {
          run_timers(p2, now);
          bool inherit;
          if (G* g = runqget(pp, &inherit)) return g;
          *new_work = true;
        }
      }
      if (G* g = runqsteal(pp, p2, last)) return g;
    }
  }
  return nullptr;
}

// steal_to_balance: steals from a P whose load (its running G, its ring, the preempted Gs wired to
// its M) exceeds m's own (the preempted Gs wired to m) by two or more, so that the steal evens
// the two out instead of reversing them. One pass, runnext left alone, no spinning accounting.
static G* steal_to_balance(M* m) {
  P* pp = m->p;
  std::uint32_t n = std::uint32_t(sched->procs);
  std::uint32_t start = m->rand.below(n);
  int mine = m->nresume;
  for (std::uint32_t k = 0; k < n; k++) {
    P* p2 = sched->allp[start + k < n ? start + k : start + k - n];
    if (p2 == pp || p2->status.load(std::memory_order_acquire) != PStatus::Running) continue;
    int load = 1 + int(p2->runq.size());
    if (M* m2 = p2->m.load(std::memory_order_acquire)) load += __atomic_load_n(&m2->nresume, __ATOMIC_RELAXED);
    if (load < mine + 2) continue;
    // No more than evens the two out (half of a long ring could reverse the imbalance).
    if (G* g = runqsteal(pp, p2, false, std::uint32_t(load - mine) / 2)) return g;
  }
  return nullptr;
}

// leave_ring_to_thief: m has a preempted G to resume (or is preempting one) and its P's next G
// waits in the ring, not in runnext, while another M could take that G: a P is idle (wakep
// starts a spinner for it) or an M spins already. Then m resumes its own and leaves the ring's G
// to the thief. Run here instead, the ring's G would be preempted in its turn and wired to m
// beside the first, and two goroutines that never switch would share this thread for good
// while a P idles (docs/preemption.md, "Known weakness": a thief that came a slice late, as one
// woken on a loaded machine can). Once per ring G (m->ring_left): if no thief came, it runs on
// m's next turn.
// runnext is never left: a G just readied (a ticker's) is what the preemption was for.
static bool leave_ring_to_thief(M* m, P* p) {
  G* first = ring_head_for_thief(m, p);
  if (!first) return false;
  m->ring_left = first;
  wakep();
  return true;
}

// find_runnable: blocks until there is a G for m to run; nullptr when the run ends.
G* find_runnable(M* m, bool* inherit) {
top:
  if (sched->exiting.load(std::memory_order_acquire)) return nullptr;
  P* p = m->p;
  *inherit = false;
  if (std::int64_t w = p->timers.when0.load(std::memory_order_acquire)) {
    std::int64_t now;
    if (due(w, &now)) run_timers(p, now);
  }
  if (p->schedtick.load(std::memory_order_relaxed) % kFairnessTick == 0 && sched->runqsize.load(std::memory_order_relaxed) > 0) {
    sched->lock.lock();
    G* g = globrunqget(p, 1);
    sched->lock.unlock();
    if (g) return g;
  }
  if (m->has_resume() && p->schedtick.load(std::memory_order_relaxed) % kFairnessTick == 0 &&
      p->runnext.load(std::memory_order_relaxed) == nullptr) {
    // A P whose ring never empties must not starve them either. Not ahead of runnext: a G just
    // readied (a timer's, a channel partner) would wait out the resumed G's whole turn (a 1 ms
    // ticker beside CPU-bound goroutines was a period late every 61st schedule).
    m->resume_passed = false;
    return m->resume_pop();
  }
  if (m->has_resume() && leave_ring_to_thief(m, p)) {
    m->resume_passed = false;
    return m->resume_pop();
  }
  if (G* g = runqget(p, inherit)) return g;
  if (m->has_resume()) {
    // This M's preempted Gs: only this M may run them (preempt.cpp), and they are hidden from
    // thieves. Every other time, take a global G or steal from a busier P before resuming one:
    // otherwise the global queue waits for the resume list to empty, and an M that started
    // with more Gs than the others keeps them all, each wired to it by its preemption, while
    // another P runs one alone (4 CPU-bound Gs on 2 Ps ran 3:1 in about half the runs, taking
    // 1.5x as long as without preemption). Go gets this balance from putting every preempted G
    // on the global queue.
    if (!m->resume_passed) {
      G* g = nullptr;
      if (sched->runqsize.load(std::memory_order_relaxed) > 0) {
        sched->lock.lock();
        g = globrunqget(p, 1);  // one: a batch would all run before the next resume
        sched->lock.unlock();
      }
      if (!g) g = steal_to_balance(m);
      if (g) {
        m->resume_passed = true;
        return g;
      }
    }
    m->resume_passed = false;
    return m->resume_pop();
  }
  if (sched->runqsize.load(std::memory_order_relaxed) > 0) {
    sched->lock.lock();
    G* g = globrunqget(p, 0);
    sched->lock.unlock();
    if (g) return g;
  }
  // The network, without blocking, before stealing (Go: an optimization; the blocked poller and
  // sysmon would get there too). Skipped while another M polls, blocked or not.
  if (netpoll_active() && !sched->poller_busy.load(std::memory_order_relaxed)) {
    int n;
    if (G* list = netpoll(0, &n)) return take_list_head(list, n);
  }
  int busy = sched->procs - sched->npidle.load(std::memory_order_relaxed);
  if (m->spinning || 2 * sched->nmspinning.load(std::memory_order_relaxed) < busy) {
    if (!m->spinning) become_spinning(m);
    bool new_work;
    if (G* g = steal_work(m, &new_work)) return g;
    if (new_work) goto top;
  }

  // Nothing found: give up the P. Step 1 of the idle protocol.
  gfree_trim(p);
  sched->lock.lock();
  if (sched->exiting.load(std::memory_order_relaxed)) {
    sched->lock.unlock();
    return nullptr;
  }
  if (sched->runqsize.load(std::memory_order_relaxed) > 0) {
    G* g = globrunqget(p, 0);
    sched->lock.unlock();
    return g;
  }
  releasep(m);
  pidleput(p);
  sched->lock.unlock();

  if (m->spinning) {
    // Steps 2 and 3: stop counting as a spinner, then look at every queue once more.
    m->spinning = false;
    sched->nmspinning.fetch_sub(1, std::memory_order_seq_cst);
    for (P* p2 : sched->allp) {
      if (!runq_empty(p2)) {
        sched->lock.lock();
        P* pp = pidleget();
        sched->lock.unlock();
        if (pp) {
          acquirep(m, pp);
          become_spinning(m);
          goto top;
        }
        break;
      }
    }
    if (sched->runqsize.load(std::memory_order_seq_cst) > 0) {
      sched->lock.lock();
      P* pp = pidleget();
      sched->lock.unlock();
      if (pp) {
        acquirep(m, pp);
        become_spinning(m);
        goto top;
      }
    }
  }

  // Sleep: one M (the poller) sleeps until the earliest timer, in epoll_wait when goroutines
  // wait on the network; every other M sleeps until handed a P.
  std::int64_t poll_until = earliest_timer();
  bool net = netpoll_active();
  if ((poll_until != 0 || net) && !sched->poller_busy.exchange(true, std::memory_order_acq_rel)) {
    bool epoll = netpoll_inited();
    G* list = nullptr;
    int n = 0;
    sched->poll_note.clear();
    sched->poll_in_epoll.store(epoll, std::memory_order_release);
    sched->poll_until.store(poll_until ? poll_until : INT64_MAX, std::memory_order_release);
    std::int64_t delay = poll_until ? poll_until - nanotime() : -1;
    if (delay < 0 && poll_until) delay = 0;
    // The netpoller may have been made since `epoll` was read: then its first socket's waiter
    // must not wait out a futex sleep until the timer. np_ensure publishes the netpoller, fences
    // and reads poll_until (wake_poller); this side publishes poll_until, fences and looks for
    // the netpoller: one of the two sees the other (found by a review; no test reproduces the
    // window, a few instructions wide at a run's first socket).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!epoll && netpoll_inited()) delay = 0;
    // (netpoll() itself re-reads the socket waiter count before an unbounded wait: after this
    // fence, so it pairs with waiter_left as well.)
    if (!sched->exiting.load(std::memory_order_acquire)) {
      m->idle_begin();
      if (epoll) list = netpoll(delay, &n);
      else if (delay > 0) sched->poll_note.sleep_for(delay);
      m->idle_end();
    }
    sched->poll_until.store(0, std::memory_order_release);
    sched->poll_in_epoll.store(false, std::memory_order_relaxed);
    sched->poller_busy.store(false, std::memory_order_release);
    sched->lock.lock();
    P* pp = pidleget();
    sched->lock.unlock();
    if (pp) {
      acquirep(m, pp);
      // Run every P's due timers now, not just this P's: the P that holds them may belong to
      // an M the OS has not scheduled yet, and the steal pass that would reach them is closed
      // while that M counts as spinning. Left alone, timers fired milliseconds late and this M
      // circled the poller with a negative delay.
      for (P* p2 : sched->allp) {
        std::int64_t w = p2->timers.when0.load(std::memory_order_acquire);
        if (std::int64_t now; w != 0 && due(w, &now)) run_timers(p2, now);
      }
      if (list) return take_list_head(list, n);
      goto top;
    }
    // Every P is busy: their Ms run the timers and take the readied Gs from the global queue.
    inject_glist(list, n);
  } else if (poll_until != 0) {
    wake_poller(poll_until);
  }
  stopm(m);
  goto top;
}

}  // namespace mpg::detail
