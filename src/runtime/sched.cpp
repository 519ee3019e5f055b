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
//    queue every 61st tick (fairness), runnext and the local ring, the global queue, stealing.
//  - An M that looks for work "spins". At most one new spinner is started at a time (wakep),
//    and an M may only start spinning while spinners are fewer than half the busy Ps, so idle
//    CPUs do not burn on empty queues.
//  - Spinning to non-spinning is the delicate step. A submitter does: 1) publish the G (ring or
//    global queue), 2) a full fence, 3) if there are idle Ps and no spinner, start one. A spinner
//    that gives up does the reverse: 1) release its P, 2) decrement nmspinning (seq_cst), 3)
//    re-check every run queue, and take a P back if one has work. Either the submitter sees the
//    spinner, or the spinner's re-check sees the G: a wake-up cannot fall between them (Go
//    issue 43997 is what happens when step 3 is skipped).
//  - Timers: each P has a timer heap; at most one idle M (the poller) sleeps until the earliest
//    timer of all Ps; an earlier new timer breaks its sleep (wake_poller). The netpoller will
//    take this role over, sleeping in epoll_wait instead of on a futex.
//  - Deadlock: when the last M goes idle with no timer pending, nothing can ever run again:
//    checkdead prints Go's message and the goroutine dump and exits 2.
#include "runtime/sched.hpp"

#include <sched.h>

#include <cstdio>
#include <cstring>

#include "mpg/errors.hpp"

#if MPG_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace mpg::detail {

Sched* sched = nullptr;

namespace {
thread_local M* tls_m = nullptr;
constexpr int kStealTries = 4;
constexpr std::uint32_t kFairnessTick = 61;
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
static G* runqget(P* p, bool* inherit) {
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
static G* runqsteal(P* pp, P* p2, bool steal_runnext) {
  std::uint32_t t = pp->runq.tail_relaxed();
  std::uint32_t n = p2->runq.grab(pp->runq, t);
  if (n == 0) {
    if (!steal_runnext) return nullptr;
    G* next = p2->runnext.load(std::memory_order_acquire);
    if (!next) return nullptr;
    // p2's owner is likely about to run its runnext (a channel hand-off takes ~100 ns). Give it
    // ~3 us before stealing, as Go's usleep(3) does, but wait without a syscall, and without
    // reading p2's runnext meanwhile: polling it would pull the line away from its owner.
    std::int64_t until = nanotime() + 3000;
    while (nanotime() < until) {
      for (int i = 0; i < 32; i++) cpu_relax();
    }
    if (!p2->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acq_rel)) return nullptr;
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
static P* pidleget() {
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
  p->m.store(m, std::memory_order_relaxed);
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
static void startm(P* p, bool spinning) {
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
  if (sched->npidle.load(std::memory_order_relaxed) == 0) return;
  if (sched->nmspinning.load(std::memory_order_relaxed) != 0) return;
  int zero = 0;
  if (!sched->nmspinning.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) return;
  startm(nullptr, true);
}

// stopm: puts m on the idle list and sleeps until someone hands it a P (or the run ends).
static void stopm(M* m) {
  if (m->resume) fatal("mpg: an M stops while its preempted G waits to resume", true);
  sched->lock.lock();
  mput(m);
  checkdead();
  sched->lock.unlock();
  m->park.sleep();
  m->park.clear();
  sched->nparks.fetch_add(1, std::memory_order_relaxed);
  if (m->nextp) {
    acquirep(m, m->nextp);
    m->nextp = nullptr;
  }
}

void handoffp(P* p) {
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
static void reset_spinning(M* m) {
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
    sched->poll_note.wake();
  }
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
      P* p2 = sched->allp[(start + k) % n];
      if (p2 == pp) continue;
      if (last) {
        std::int64_t w = p2->timers.when0.load(std::memory_order_acquire);
        if (w != 0) {
          std::int64_t now = nanotime();
          if (w <= now) {
            run_timers(p2, now);
            bool inherit;
            if (G* g = runqget(pp, &inherit)) return g;
            *new_work = true;
          }
        }
      }
      if (G* g = runqsteal(pp, p2, last)) return g;
    }
  }
  return nullptr;
}

// find_runnable: blocks until there is a G for m to run; nullptr when the run ends.
static G* find_runnable(M* m, bool* inherit) {
top:
  if (sched->exiting.load(std::memory_order_acquire)) return nullptr;
  P* p = m->p;
  *inherit = false;
  if (std::int64_t w = p->timers.when0.load(std::memory_order_acquire)) {
    std::int64_t now = nanotime();
    if (w <= now) run_timers(p, now);
  }
  if (p->schedtick.load(std::memory_order_relaxed) % kFairnessTick == 0 && sched->runqsize.load(std::memory_order_relaxed) > 0) {
    sched->lock.lock();
    G* g = globrunqget(p, 1);
    sched->lock.unlock();
    if (g) return g;
  }
  if (G* g = runqget(p, inherit)) return g;
  if (G* g = m->resume_pop()) return g;  // this M's preempted Gs: only this M may run them
  if (sched->runqsize.load(std::memory_order_relaxed) > 0) {
    sched->lock.lock();
    G* g = globrunqget(p, 0);
    sched->lock.unlock();
    if (g) return g;
  }
  int busy = sched->procs - sched->npidle.load(std::memory_order_relaxed);
  if (m->spinning || 2 * sched->nmspinning.load(std::memory_order_relaxed) < busy) {
    if (!m->spinning) become_spinning(m);
    bool new_work;
    if (G* g = steal_work(m, &new_work)) return g;
    if (new_work) goto top;
  }

  // Nothing found: give up the P. Step 1 of the idle protocol.
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

  // Sleep: until the earliest timer if nobody else waits for timers, else until handed a P.
  std::int64_t poll_until = earliest_timer();
  if (poll_until != 0 && !sched->poller_busy.exchange(true, std::memory_order_acq_rel)) {
    sched->poll_note.clear();
    sched->poll_until.store(poll_until, std::memory_order_release);
    std::int64_t delay = poll_until - nanotime();
    if (delay > 0 && !sched->exiting.load(std::memory_order_acquire)) sched->poll_note.sleep_for(delay);
    sched->poll_until.store(0, std::memory_order_release);
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
      std::int64_t now = nanotime();
      for (P* p2 : sched->allp) {
        std::int64_t w = p2->timers.when0.load(std::memory_order_acquire);
        if (w != 0 && w <= now) run_timers(p2, now);
      }
      goto top;
    }
    // Every P is busy: their Ms run the timers. Fall through to sleep.
  } else if (poll_until != 0) {
    wake_poller(poll_until);
  }
  stopm(m);
  goto top;
}

// ---------------------------------------------------------------------------------------------
// Switching.
//
// A G leaves the CPU in one of three ways (M::After): it yields, it parks, or it exits. What must
// happen then (queue it, mark it Waiting and release its channel lock, pool it) must happen only
// once the G is off its stack, so it runs in whichever context is switched to next, on the same
// M: g0 (execute) or, when the P already has the next G at hand, that G itself (a direct
// G-to-G switch, which saves the two jumps through g0 that Go's mcall+gogo pay). Every switch
// passes the G it leaves as the Transfer's data (nullptr when leaving g0); the landing side
// records the leaver's context and runs its after-action (land()).

// begin_run: g becomes m's running G.
static void begin_run(M* m, P* p, G* g, bool inherit) {
  if (!inherit) p->schedtick.store(p->schedtick.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  g->preempt.store(false, std::memory_order_relaxed);
  g->set_status(GStatus::Runnable, GStatus::Running);
  g->m = m;
  g->last_m = m;
  m->curg.store(g, std::memory_order_release);  // sysmon reads the G through it
  p->switches.store(p->switches.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  // Warm the G queued next while this one runs: with a page per G, a cold G costs a TLB and a
  // cache miss that a batch of short goroutines would otherwise pay one after the other.
  if (G* next = p->runq.peek(0)) {
    __builtin_prefetch(next);
    // Racy by design (a thief may be running `next`): a relaxed atomic read, paired with the
    // relaxed atomic writes of ctx, so the race is defined and TSan-clean.
    __builtin_prefetch(__atomic_load_n(&next->ctx, __ATOMIC_RELAXED));
  }
}

// after_action: what happens to g, now off its stack, per m->after. Returns g if it must run
// again at once (an unlockf that declined to park).
static G* after_action(M* m, G* g, Ctx saved) {
  __atomic_store_n(&g->ctx, saved, __ATOMIC_RELAXED);
  if (reinterpret_cast<std::uintptr_t>(saved) < g->lowwater) g->lowwater = reinterpret_cast<std::uintptr_t>(saved);
  P* p = m->p;
  switch (m->after) {
    case M::After::Yield:
      g->set_status(GStatus::Running, GStatus::Runnable);
      runqput(p, g, false);
      return nullptr;
    case M::After::YieldGlobal:
      g->set_status(GStatus::Running, GStatus::Runnable);
      globrunqput_batch(&g, 1);
      return nullptr;
    case M::After::AsyncPreempt:
      g->set_status(GStatus::Running, GStatus::Runnable);
      if (g->lockedm) {
        globrunqput_batch(&g, 1);  // wired: the locked-thread hand-off brings it back to this M
      } else {
        m->resume_push(g);  // only this M resumes it (preempt.cpp): after its P's local work
      }
      return nullptr;
    case M::After::SyscallNoP:
      g->set_status(GStatus::Syscall, GStatus::Runnable);
      globrunqput_batch(&g, 1);
      if (G* r = m->resume_pop()) {
        // This M has no P and must wait for one; its preempted G waits with it, wired to it,
        // so the locked-thread hand-off wakes this M when the G is picked. (One at most can
        // be waiting here: a second preemption would have needed a P.)
        r->lockedm = m;
        m->lockedg = r;
        r->async_wired = true;
        globrunqput_batch(&r, 1);
      }
      wakep();
      return nullptr;
    case M::After::Park: {
      g->set_status(GStatus::Running, GStatus::Waiting);
      if (TimerNode* tn = m->arm_timer) {
        m->arm_timer = nullptr;
        timer_arm(tn, m->arm_when);
      }
      if (m->unlockf && !m->unlockf(g, m->unlock_arg)) {
        g->set_status(GStatus::Waiting, GStatus::Runnable);
        return g;
      }
      return nullptr;
    }
    case M::After::Exit: {
      g->set_status(GStatus::Running, GStatus::Dead);
#if MPG_ASAN
      // The frames that never returned (g_entry, goexit) leave their redzones poisoned; the
      // next G on this stack must not inherit them.
      {
        char* sp = static_cast<char*>(saved) - 1024;
        if (sp < g->stack.lo + kPageSize) sp = g->stack.lo + kPageSize;
        __asan_unpoison_memory_region(sp, std::size_t(g->closure_area() - sp));
      }
#endif
      bool was_main = g->id == 1;
      bool locked = g->lockedm != nullptr;
      if (locked) {
        g->lockedm = nullptr;
        g->lock_count = 0;
        m->lockedg = nullptr;
      }
      gfput(p, g);
      if (was_main) {
        sched->lock.lock();
        sched->exiting.store(true, std::memory_order_release);
        for (M* om : sched->allm) om->park.wake();
        sched->lock.unlock();
        sched->poll_note.wake();
      } else if (locked) {
        // Go terminates a thread whose locked goroutine exits: its state may be unusual.
        m->exit_thread = true;
      }
      return nullptr;
    }
    case M::After::None:
      break;
  }
  fatal("mpg: G switched out with no after-action", true);
}

// land: the first thing a G does when it runs again (or for the first time): note where the
// previous context stopped and finish its switch-out.
static void land(Transfer t) {
  M* m = current_m();
  G* prev = static_cast<G*>(t.data);
  if (!prev) {
    m->g0ctx = t.fctx;
    return;
  }
  if (G* again = after_action(m, prev, t.fctx)) runqput(m->p, again, true);
}

void g_landed(Transfer t) { land(t); }

// direct_next: the G to switch to without visiting g0, or nullptr when g0 must decide: the
// thread is locked, the run is ending, the P is due for its global-queue fairness check or a
// timer, or its queues are empty.
static G* direct_next(M* m, bool* inherit) {
  if (m->lockedg || sched->exiting.load(std::memory_order_relaxed) || sched->debug_migrate) return nullptr;
  P* p = m->p;
  if (p->schedtick.load(std::memory_order_relaxed) % kFairnessTick == kFairnessTick - 1 && sched->runqsize.load(std::memory_order_relaxed) > 0)
    return nullptr;
  if (std::int64_t w = p->timers.when0.load(std::memory_order_relaxed); w != 0 && w <= nanotime()) return nullptr;
  G* next = runqget(p, inherit);
  if (next && next->lockedm) {
    m->handoff = next;  // wired to a thread: g0's schedule hands it over, next thing
    return nullptr;
  }
  return next;
}

// switch_out: the running G leaves the CPU (yield, park, exit). Returns when it runs again,
// possibly on another M.
static void switch_out(M* m, G* g, M::After after) {
  if (g->async_wired && after != M::After::AsyncPreempt) {
    // The cooperative switch that ends the wiring of a preempted G (see SyscallNoP).
    g->async_wired = false;
    if (g->lock_count == 0) {
      g->lockedm = nullptr;
      m->lockedg = nullptr;
    }
  }
  m->after = after;
  bool dying = after == M::After::Exit;
  bool inherit;
  Transfer t;
  if (G* next = direct_next(m, &inherit)) {
    begin_run(m, m->p, next, inherit);
    t = switch_context(g->fiber, next->ctx, next->fiber, g, dying);
  } else {
    m->curg.store(nullptr, std::memory_order_relaxed);
    t = switch_context(g->fiber, m->g0ctx, m->g0fiber, g, dying);
  }
  land(t);
}

void goexit(M* m, G* g) {
  switch_out(m, g, M::After::Exit);
  __builtin_unreachable();
}

static void stoplockedm(M* m) {
  if (m->resume) fatal("mpg: a locked M has a preempted G waiting to resume", true);
  if (m->p) handoffp(releasep(m));
  sched->lock.lock();
  sched->nmidlelocked++;
  checkdead();
  sched->lock.unlock();
  m->park.sleep();
  m->park.clear();
  // The waker (startlockedm) took us off the idle-locked count, as mget does for idle Ms, so
  // checkdead never counts a woken M as asleep.
  if (m->nextp) {
    acquirep(m, m->nextp);
    m->nextp = nullptr;
  }
}

// startlockedm: g is wired to another M: give that M our P and the G, and stop.
static void startlockedm(M* m, G* g) {
  M* lm = g->lockedm;
  sched->lock.lock();
  sched->nmidlelocked--;
  sched->lock.unlock();
  P* p = releasep(m);
  lm->nextp = p;
  lm->park.wake();
  stopm(m);
}

// execute: runs g on m; returns to g0 when the last G of a chain of direct switches leaves for
// g0. Returns a G to run at once, or nullptr.
static G* execute(M* m, G* g, bool inherit) {
  begin_run(m, m->p, g, inherit);
  Transfer t = switch_context(m->g0fiber, g->ctx, g->fiber, nullptr);
  m->curg.store(nullptr, std::memory_order_relaxed);
  return after_action(m, static_cast<G*>(t.data), t.fctx);
}

void schedule_loop(M* m) {
  for (;;) {
    G* g;
    bool inherit = false;
    if (!m->p && !m->lockedg && !m->exit_thread) {
      // Back from a blocking call whose P was retaken: wait for one.
      if (sched->exiting.load(std::memory_order_acquire)) return;
      stopm(m);
      continue;
    }
    if (m->exit_thread) {
      // Its locked goroutine exited: the thread ends. The main thread cannot end (run() must
      // return on it), so like Go's m0 it is wedged: it never runs a goroutine again and
      // waits for the end of the run.
      handoffp(releasep(m));
      if (m->id == 0) {
        while (!sched->exiting.load(std::memory_order_acquire)) {
          m->park.sleep();
          m->park.clear();
        }
      }
      return;
    }
    if (m->lockedg) {
      stoplockedm(m);
      if (sched->exiting.load(std::memory_order_acquire)) return;
      g = m->lockedg;
    } else {
      if (m->handoff) {
        g = m->handoff;
        m->handoff = nullptr;
      } else {
        g = find_runnable(m, &inherit);
        if (!g) return;
      }
      if (m->spinning) reset_spinning(m);
      if (sched->debug_migrate && g->started && g->last_m == m && !g->lockedm && !m->resume) {
        // MPG_DEBUG=migrate=1: a G never resumes on the thread it last ran on. Give it and this
        // P to another thread (an idle one, or a new one) and go idle, so thread_local
        // addresses cached across a switch in user code show up as bugs at once.
        runqput(m->p, g, true);
        startm(releasep(m), false);
        stopm(m);
        continue;
      }
      if (g->lockedm && g->lockedm != m) {
        if (m->resume) {
          // Not now: this M must not stop while its preempted G waits for it.
          globrunqput_batch(&g, 1);
          continue;
        }
        startlockedm(m, g);
        continue;
      }
    }
    while (g) g = execute(m, g, inherit), inherit = true;
  }
}

// ---------------------------------------------------------------------------------------------
// Deadlock detection (sched->lock held).

void checkdead() {
  if (sched->exiting.load(std::memory_order_relaxed)) return;
  if (sched->external_refs.load(std::memory_order_acquire) > 0) return;
  int exited = 0;
  for (M* m : sched->allm) exited += m->exit_thread ? 1 : 0;
  int run = int(sched->allm.size()) - sched->nmidle - sched->nmidlelocked - exited;
  if (run > 0) return;
  if (sched->runqsize.load() > 0) fatal("mpg: checkdead: runnable G on the global queue with every M idle", true);
  for (P* p : sched->allp) {
    if (!runq_empty(p)) fatal("mpg: checkdead: runnable G on a local queue with every M idle", true);
    if (p->timers.when0.load() != 0) {
      // A timer is pending yet nobody waits for it: start the search again rather than hang.
      // (The poller is not idle, so reaching here means it has just left; it re-checks.)
      return;
    }
  }
  fatal("all goroutines are asleep - deadlock!", true);
}

// ---------------------------------------------------------------------------------------------
// Park and ready (the calls every blocking primitive is built on).

void park(WaitReason reason, bool (*unlockf)(G*, void*), void* arg) {
  M* m = current_m();
  G* g = m ? m->curg.load(std::memory_order_relaxed) : nullptr;
  if (!g) throw RuntimeMisuse("mpg: blocking operation outside a goroutine");
  g->wait_reason = reason;
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  g->wait_since = std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  m->unlockf = unlockf;
  m->unlock_arg = arg;
  switch_out(m, g, M::After::Park);
  g->wait_reason = WaitReason::None;
}

void park_with_timer(WaitReason reason, bool (*unlockf)(G*, void*), void* arg, TimerNode* timer, std::int64_t when) {
  M* m = current_m();
  if (!m || !m->curg.load(std::memory_order_relaxed)) throw RuntimeMisuse("mpg: blocking operation outside a goroutine");
  m->arm_timer = timer;
  m->arm_when = when;
  park(reason, unlockf, arg);
}

void ready(G* g) {
  g->set_status(GStatus::Waiting, GStatus::Runnable);
  M* m = current_m();
  P* p = m ? m->p : nullptr;
  if (p) {
    runqput(p, g, true);
  } else {
    globrunqput_batch(&g, 1);
  }
  wakep();
}

void yield_global() {
  M* m = current_m();
  if (G* g = m ? m->curg.load(std::memory_order_relaxed) : nullptr) switch_out(m, g, M::After::YieldGlobal);
}

void async_yield() {
  M* m = current_m();
  switch_out(m, m->curg.load(std::memory_order_relaxed), M::After::AsyncPreempt);
}

bool reacquire_idle_p(M* m) {
  sched->lock.lock();
  P* p = pidleget();
  sched->lock.unlock();
  if (!p) return false;
  acquirep(m, p);
  return true;
}

void syscall_exit_nop(M* m, G* g) {
  // No P: g0 must take over (direct_next needs a P). g0 queues the G and idles the M.
  m->after = M::After::SyscallNoP;
  m->curg.store(nullptr, std::memory_order_relaxed);
  Transfer t = switch_context(g->fiber, m->g0ctx, m->g0fiber, g);
  land(t);
}

}  // namespace mpg::detail

namespace mpg {

void yield() {
  using namespace detail;
  M* m = current_m();
  G* g = m ? m->curg.load(std::memory_order_relaxed) : nullptr;
  if (!g) {
    sched_yield();
    return;
  }
  switch_out(m, g, M::After::Yield);
}

}  // namespace mpg
