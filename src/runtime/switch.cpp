// switch.cpp: how a goroutine leaves the CPU and how the next one starts: the after-actions
// (yield, park, exit, preemption, blocking-call return), direct G-to-G switches, g0's schedule
// loop, the locked-thread hand-offs, deadlock detection, and park/ready, the calls every
// blocking primitive is built on. sched.cpp finds the work; this file runs it.
#include <sched.h>

#include <cstdio>

#include "mpg/errors.hpp"
#include "mpg/runtime.hpp"
#include "runtime/netpoll.hpp"
#include "runtime/sched.hpp"

#if MPG_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace mpg::detail {

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

// kWarmBelow, kWarmAbove: cache lines of the next G's stack that begin_run prefetches below and
// above its guessed stack pointer when the G it starts was I/O-woken (the wait path's frames
// above it; the next request's below).
constexpr int kWarmBelow = 8;
constexpr int kWarmAbove = 16;
// kWarmMaxDepth: a G parked deeper than this below its G struct gets no stack warming (a guess
// that far off is more likely wrong than useful).
constexpr std::uintptr_t kWarmMaxDepth = 64 * 1024;

// begin_run: g becomes m's running G.
static void begin_run(M* m, P* p, G* g, bool inherit) {
  if (!inherit || m->slice_spent) {
    m->slice_spent = false;
    p->schedtick.store(p->schedtick.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  g->preempt.store(false, std::memory_order_relaxed);
  g->async_stopped = false;
  g->set_status(GStatus::Runnable, GStatus::Running);
  g->m = m;
  if (sched->debug_migrate) [[unlikely]] g->last_m = m;  // in the G's second line: only when asked
  m->curg.store(g, std::memory_order_release);  // sysmon reads the G through it
  p->switches.store(p->switches.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  // Warm the G queued next while this one runs: with a page per G, a cold G costs a TLB and a
  // cache miss that a batch of short goroutines would otherwise pay one after the other. Only
  // prefetches: reading the next G (its saved SP, its io_woken) to aim them made every switch
  // wait for that line, which a spawner on the other core had just written (spawn_wait_1e6
  // 45.7 -> 43.3 ns without the read). Its stack is aimed at instead from this G: when this one
  // was woken by the netpoller, the next one likely was too (a poll readies a batch), and Gs
  // blocked in the same read loop park at the same depth below their G, so the next G's
  // saved SP is guessed as its address minus this one's depth. Then kWarmBelow + kWarmAbove
  // lines around it: the frames its resume returns through and those the next request's calls
  // build (a connection's parse and handler, at 1,000 connections each a miss in turn:
  // docs/runtime.md). A wrong guess costs prefetches only (they never fault; addresses as
  // integers, since they may lie outside any stack). Fetching the G after next too (a
  // pipeline) cost spawn_wait_1e6 ~20%: not done.
  std::uintptr_t depth = 0;
  if (g->io_woken) {
    g->io_woken = false;
    depth = reinterpret_cast<std::uintptr_t>(g) - reinterpret_cast<std::uintptr_t>(context_sp(g->ctx));
  }
  if (G* next = p->runq.peek(0)) {
    __builtin_prefetch(next);
    if (depth != 0 && depth < kWarmMaxDepth) {
      std::uintptr_t sp = reinterpret_cast<std::uintptr_t>(next) - depth;
      for (int i = -kWarmBelow; i < kWarmAbove; i++)
        __builtin_prefetch(reinterpret_cast<const void*>(sp + static_cast<std::uintptr_t>(std::intptr_t{i} * 64)));
    }
  }
}

// wire_one_resume: m is about to wait without a P while preempted Gs wait for it in its resume
// list. The first is wired to m, as by lock_os_thread, and queued globally, so the locked-thread
// hand-off wakes m with a P when some M picks it; the others wait in the list until then (the
// M runs them once the wired one is preempted again or switches cooperatively).
static void wire_one_resume(M* m) {
  // Not when a G is wired to m already (the one returning from a blocking call, say): that one
  // wakes m, and a second would be handed over to an M that runs only the first.
  if (m->lockedg) return;
  if (G* r = m->resume_pop()) {
    r->lockedm = m;
    m->lockedg = r;
    r->async_wired = true;
    globrunqput_batch(&r, 1);
  }
}

// after_action: what happens to g, now off its stack, per m->after. Returns g if it must run
// again at once (an unlockf that declined to park).
static G* after_action(M* m, G* g, Ctx saved) {
  g->ctx = saved;
  if (reinterpret_cast<std::uintptr_t>(saved) < g->lowwater) g->lowwater = reinterpret_cast<std::uintptr_t>(saved);
  P* p = m->p;
  M::After after = m->after;
  m->after = M::After::None;  // the switch is complete (the preemption handler reads it)
  switch (after) {
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
      g->async_stopped = true;
      if (g->async_wired && g->lock_count == 0) {
        // Wired to this M only so that the M, then without a P, would be woken for it (see
        // SyscallNoP). The M has a P again: back to the resume list, no hand-offs.
        g->async_wired = false;
        g->lockedm = nullptr;
        m->lockedg = nullptr;
      }
      if (g->lockedm) {
        globrunqput_batch(&g, 1);  // locked: the locked-thread hand-off brings it back to this M
      } else {
        m->resume_push(g);  // only this M resumes it (preempt.cpp): after its P's local work
      }
      return nullptr;
    case M::After::SyscallNoP:
      g->set_status(GStatus::Syscall, GStatus::Runnable);
      globrunqput_batch(&g, 1);
      wire_one_resume(m);
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
        sched->poll_note.wake();  // both: the poller may be choosing where to sleep right now
        netpoll_break();
      } else if (locked) {
        // Go terminates a thread whose locked goroutine exits: its state may be unusual.
        m->exit_thread.store(true, std::memory_order_relaxed);
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
  // The same tick test as find_runnable (both run before the next G bumps schedtick).
  if (p->schedtick.load(std::memory_order_relaxed) % kFairnessTick == 0 &&
      (sched->runqsize.load(std::memory_order_relaxed) > 0 || m->has_resume()))
    return nullptr;
  if (std::int64_t w = p->timers.when0.load(std::memory_order_relaxed); w != 0 && due(w)) return nullptr;
  // A G being preempted (not yet in the resume list) or one waiting there: g0's find_runnable
  // may resume it and leave the ring's next G to another M (leave_ring_to_thief).
  if ((m->after == M::After::AsyncPreempt || m->has_resume()) && ring_head_for_thief(m, p)) return nullptr;
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
  std::atomic_signal_fence(std::memory_order_seq_cst);  // set before anything a signal can see
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
  // Preempted Gs may wait with an M whose locked G is one of them (wire_one_resume); never with
  // one locked by lock_os_thread, which lets them run first.
  if (m->resume && !m->lockedg->async_wired) fatal("mpg: a locked M has a preempted G waiting to resume", true);
  if (m->p) handoffp(releasep(m));
  sched->lock.lock();
  sched->nmidlelocked++;
  checkdead();
  sched->lock.unlock();
  m->sleep_on_park();
  // The waker (startlockedm) took us off the idle-locked count, as mget does for idle Ms, so
  // checkdead never counts a woken M as asleep.
  if (m->nextp) {
    acquirep(m, m->nextp);
    m->nextp = nullptr;
  }
}

// handoff_locked: g is wired to another M: give that M our P (it runs g next).
static void handoff_locked(M* m, G* g) {
  M* lm = g->lockedm;
  sched->lock.lock();
  sched->nmidlelocked--;
  sched->lock.unlock();
  P* p = releasep(m);
  lm->nextp = p;
  lm->park.wake();
}

// startlockedm: g is wired to another M: give that M our P and the G, and stop.
static void startlockedm(M* m, G* g) {
  handoff_locked(m, g);
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
    if (!m->p && !m->lockedg && !m->exit_thread.load(std::memory_order_relaxed)) {
      // Back from a blocking call whose P was retaken: wait for one.
      if (sched->exiting.load(std::memory_order_acquire)) return;
      stopm(m);
      continue;
    }
    if (m->exit_thread.load(std::memory_order_relaxed)) {
      // Its locked goroutine exited: the thread ends. The main thread cannot end (run() must
      // return on it), so like Go's m0 it is wedged: it never runs a goroutine again and
      // waits for the end of the run.
      handoffp(releasep(m));
      if (m->id == 0) {
        while (!sched->exiting.load(std::memory_order_acquire)) {
          m->sleep_on_park();
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
      if (sched->debug_migrate && g->started && g->last_m == m && !g->lockedm && !g->async_stopped && !m->resume) {
        // MPG_DEBUG=migrate=1: a G never resumes on the thread it last ran on after a
        // cooperative switch. Give it and this P to another thread (an idle one, or a new one)
        // and go idle, so thread_local addresses cached across a switch in user code show up as
        // bugs at once. Not a G stopped by a preemption signal: that one may rely on resuming
        // here (preempt.cpp), and moving it would report bugs that cannot happen otherwise.
        // Into runnext, unless the ring is full (a spawner that stepped aside, picked by the
        // 1-in-61 tick): then runnext's old G would overflow half the ring to the global queue,
        // which this mode must not cause, so g goes back there alone.
        if (m->p->runq.size() >= kLocalQueueSize - 1) globrunqput_batch(&g, 1);
        else runqput(m->p, g, true);
        startm(releasep(m), false);
        stopm(m);
        continue;
      }
      if (g->lockedm && g->lockedm != m) {
        if (m->resume) {
          // This M cannot go idle while preempted Gs wait for it, and g's M needs a P: wire one
          // of them to this M (it is woken when that G is picked), hand our P over, and wait as
          // a locked M. (Putting g back on the global queue instead starved it, and at the
          // 1-in-61 tick, which takes the global queue first, spun this M forever.)
          wire_one_resume(m);
          handoff_locked(m, g);
          wakep();  // for the G just wired, now on the global queue
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
  for (M* m : sched->allm) exited += m->exit_thread.load(std::memory_order_relaxed) ? 1 : 0;
  int run = int(sched->allm.size()) - sched->nmidle - sched->nmidlelocked - exited;
  if (run > 0) return;
  if (sched->runqsize.load() > 0) {
    std::fprintf(stderr, "checkdead: npidle=%d nmspinning=%d nmidle=%d nmidlelocked=%d threads=%zu poller_busy=%d poll_in_epoll=%d runq=%u\n",
                 sched->npidle.load(), sched->nmspinning.load(), sched->nmidle, sched->nmidlelocked, sched->allm.size(),
                 int(sched->poller_busy.load()), int(sched->poll_in_epoll.load()), sched->runqsize.load());
    for (P* p : sched->allp) {
      M* pm = p->m.load();
      std::fprintf(stderr, "  P%d status=%d m=%d\n", p->id, int(p->status.load()), pm ? pm->id : -1);
    }
    for (M* m : sched->allm)
      std::fprintf(stderr, "  M%d oldp=%d p=%d nextp=%d lockedg=%p spinning=%d resume=%d\n", m->id, m->oldp ? m->oldp->id : -1, m->p ? m->p->id : -1,
                   m->nextp ? m->nextp->id : -1, (void*)m->lockedg, int(m->spinning), int(m->has_resume()));
    fatal("mpg: checkdead: runnable G on the global queue with every M idle", true);
  }
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
  park_on(m, g, reason, unlockf, arg);
}

void park_on(M* m, G* g, WaitReason reason, bool (*unlockf)(G*, void*), void* arg) {
  g->wait_reason = reason;
  // The wait's start for the goroutine dump, from sysmon's clock (no clock read on this path:
  // ~5 ns of a ~60 ns channel hand-off); the real clock while sysmon sleeps deeply.
  std::int64_t now = sched->sysmon_clock.load(std::memory_order_relaxed);
  g->wait_since = now ? now : coarse_nanotime();
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

void ready(G* g) { ready_on(current_m(), g); }

void ready_on(M* m, G* g) {
  g->set_status(GStatus::Waiting, GStatus::Runnable);
  P* p = m ? m->p : nullptr;
  if (p) {
    runqput(p, g, true);
    // g waits in the runnext of a P that is running (ours), so it runs when we next switch
    // whatever wakep decides: a missed wakep costs parallelism here, never a wake-up. So, as Go,
    // no fence of our own: the exchange in runqput is a locked instruction on x86.
    wakep_unfenced();
  } else {
    globrunqput_batch(&g, 1);
    wakep();
  }
}

void yield_global() {
  M* m = current_m();
  if (G* g = m ? m->curg.load(std::memory_order_relaxed) : nullptr) switch_out(m, g, M::After::YieldGlobal);
}

void async_yield() {
  M* m = current_m();
  m->slice_spent = true;
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
  std::atomic_signal_fence(std::memory_order_seq_cst);
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
