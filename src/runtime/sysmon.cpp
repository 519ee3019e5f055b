// sysmon.cpp: the system monitor, a thread with no P (Go's sysmon).
//
// No goroutine may stall a P: one that computes without runtime calls would keep every other G
// of its P waiting, and one blocked in a system call would keep a P (the right to run Gs) that
// it cannot use. sysmon watches every P from outside:
//  1. It sleeps 20 us, doubling after 50 rounds without work up to 10 ms; when every P is idle
//     it sleeps until woken (wakep and mpg::blocking wake it) or until the schedtrace is due.
//  2. Each round, for each P: if the P's schedtick has not moved for a time slice, one G has
//     run that long: set its preempt flag (it yields at its next runtime entry) and signal its
//     M (asynchronous preemption, preempt.cpp).
//  3. If the P's M is in mpg::blocking and its syscalltick has not moved since the last round
//     (>= 20 us), retake the P (CAS Syscall -> Idle) and hand it to another M, unless there is
//     nothing for it to do and spinning or idle Ms exist, for up to 10 ms (Go's retake rule).
//  4. If a timer is overdue and nobody is about, wake an M for it.
//  5. If goroutines wait on the network and nobody has polled for 10 ms, poll and queue them.
//  6. Every ~10 ms, measure how long the Ms waited for a CPU and cap the netpoller's spreading
//     of readied Gs while they do (cpuwait.cpp).
#include <sys/syscall.h>
#include <time.h>

#include <algorithm>
#include <thread>

#include "runtime/netpoll.hpp"
#include "runtime/sched.hpp"

namespace mpg::detail {

namespace {

// kSysmonMinDelayNs / kSysmonMaxDelayNs: sysmon's sleep, 20 us doubling to 10 ms (Go's values).
constexpr std::int64_t kSysmonMinDelayNs = 20'000;
constexpr std::int64_t kSysmonMaxDelayNs = 10'000'000;
// kSysmonIdleRounds: rounds without work before the sleep starts doubling.
constexpr int kSysmonIdleRounds = 50;
// kRetakeGraceNs: a P in a blocking call with nothing queued is left alone this long while
// other Ms are free to pick up new work (Go: 10 ms), so short calls cost no hand-off.
constexpr std::int64_t kRetakeGraceNs = 10'000'000;
// kTimerLateNs: a timer this overdue, on a P whose G has run at least this long, gets the G
// preempted early (timer-driven preemption; see retake).
constexpr std::int64_t kTimerLateNs = 100'000;
// kSysmonNetpollNs: sysmon polls the network when nobody has for this long (Go: 10 ms).
constexpr std::int64_t kSysmonNetpollNs = 10'000'000;
// kGScavengeEveryNs: how often sysmon gives back pooled goroutine stacks (gfree_scavenge).
constexpr std::int64_t kGScavengeEveryNs = 1'000'000'000;

std::thread sysmon_thread;
std::atomic<bool> sysmon_stop_flag{false};

void sleep_ns(std::int64_t ns) {
  timespec ts{time_t(ns / 1'000'000'000), long(ns % 1'000'000'000)};
  nanosleep(&ts, nullptr);
}

// preemptone: asks the G running on p to stop (Go's preemptone).
void preemptone(P* p) {
  M* m = p->m.load(std::memory_order_acquire);
  if (!m) return;
  G* g = m->curg.load(std::memory_order_acquire);
  if (!g || g->status.load(std::memory_order_relaxed) != GStatus::Running) return;
  g->preempt.store(true, std::memory_order_release);
  sched->preempt_requests.fetch_add(1, std::memory_order_relaxed);
  if (sched->async_preempt) preempt_signal(m);
}

// surplus: p's ring holds a G that a lighter M would steal: find_runnable's steal_to_balance
// takes from a P whose load (running G, ring, Gs wired to its M) is at least two above the
// thief's, and a thief that was just preempted counts one of its own.
static bool surplus(P* p) {
  std::uint32_t ring = p->runq.size();
  if (ring == 0) return false;
  M* m = p->m.load(std::memory_order_acquire);
  int wired = m ? __atomic_load_n(&m->nresume, __ATOMIC_RELAXED) : 0;
  return int(ring) + wired >= 2;
}

// queued_elsewhere: another P has a surplus this P's M would steal once preempted.
static bool queued_elsewhere(P* self) {
  for (P* p : sched->allp) {
    if (p != self && p->status.load(std::memory_order_acquire) == PStatus::Running && surplus(p)) return true;
  }
  return false;
}

// light_other: another P whose G has run at least half a slice with nothing queued behind it
// and no preempted G wired to its M: the one to preempt so that it steals.
static P* light_other(P* self, std::int64_t now) {
  for (P* p : sched->allp) {
    if (p == self || p->status.load(std::memory_order_acquire) != PStatus::Running) continue;
    if (p->sysmon.schedwhen + sched->time_slice / 2 > now || !runq_empty(p)) continue;
    M* m = p->m.load(std::memory_order_acquire);
    if (m && !m->has_resume()) return p;
  }
  return nullptr;
}

// retake: steps 2 and 3 for every P. Returns how many Ps were taken from blocking calls.
int retake(std::int64_t now) {
  int n = 0;
  for (P* p : sched->allp) {
    P::SysmonView& pd = p->sysmon;
    PStatus s = p->status.load(std::memory_order_acquire);
    if (s == PStatus::Running) {
      std::uint32_t t = p->schedtick.load(std::memory_order_relaxed);
      std::int64_t w = p->timers.when0.load(std::memory_order_acquire);
      if (pd.schedtick != t) {
        pd.schedtick = t;
        pd.schedwhen = now;
      } else if (w != 0 && w + kTimerLateNs <= now && pd.schedwhen + kTimerLateNs <= now) {
        // A timer on this P is overdue and its G has run a while: the timer's waiter needs this
        // P's next schedule, so do not make it wait out the rest of the slice (timer-driven
        // preemption; Go waits for the slice: a 1 ms ticker beside CPU-bound goroutines is
        // ~20 ms late there).
        preemptone(p);
      } else if (pd.schedwhen + sched->time_slice <= now) {
        // The G has used its slice. Preempt it only if that helps someone: a preempted G
        // resumes on its own thread (preempt.cpp), so with nothing else for this P to run, or
        // with idle Ps that can steal this P's queue instead, preempting would only pin it.
        // Ask again every round until it lets go (the M's pending flag stops signal storms).
        // Gs pinned to this M by an earlier preemption can run nowhere else: then preempting
        // is the only way, idle Ps or not.
        // And a surplus queued on another busy P: this M, once in the scheduler, steals from it
        // before resuming its own (find_runnable), which is how the Ps even out.
        M* pm = p->m.load(std::memory_order_acquire);
        bool pinned = pm && pm->has_resume();
        bool queued = !runq_empty(p);
        bool global_work = sched->runqsize.load(std::memory_order_relaxed) > 0;
        P* light = nullptr;
        if (queued && !pinned && sched->npidle.load(std::memory_order_relaxed) > 0) {
          wakep();  // an idle P will steal the waiting Gs; nobody needs to be pinned
        } else if (queued && surplus(p) && pd.schedwhen + 2 * sched->time_slice > now &&
                   (light = light_other(p, now)) != nullptr) {
          // Another P runs one long G with nothing queued and nothing pinned: preempt that one
          // first, so its M steals from this P's ring before this M, preempted in the same
          // round, takes the queue for itself (4 CPU-bound Gs on 2 Ps could end 3:1, each
          // wired to its M, and take 1.5x as long). This P's turn comes next round.
          preemptone(light);
        } else if (queued || pinned || global_work || queued_elsewhere(p)) {
          preemptone(p);
        }
      }
    } else if (s == PStatus::Syscall) {
      std::uint32_t t = p->syscalltick.load(std::memory_order_relaxed);
      if (pd.syscalltick != t) {
        pd.syscalltick = t;
        pd.syscallwhen = now;
        continue;
      }
      if (runq_empty(p) && sched->nmspinning.load() + sched->npidle.load() > 0 && pd.syscallwhen + kRetakeGraceNs > now)
        continue;
      // While sysmon carries the P from the blocking M to another, no M holds it and it is not on
      // the idle list: count sysmon as a running M meanwhile (Go's incidlelocked(-1) around
      // retake), or an M that stops right then would see every M idle, a G queued, no idle P,
      // and report a deadlock that is not there (found by the stress test at procs=1).
      sched->lock.lock();
      sched->nmidlelocked--;
      sched->lock.unlock();
      PStatus expect = PStatus::Syscall;
      if (p->status.compare_exchange_strong(expect, PStatus::Idle, std::memory_order_acq_rel)) {
        sched->retakes.fetch_add(1, std::memory_order_relaxed);
        n++;
        handoffp(p);
      }
      sched->lock.lock();
      sched->nmidlelocked++;
      checkdead();  // the last M may have stopped while sysmon counted as running
      sched->lock.unlock();
    }
  }
  return n;
}

void sysmon_main(int trace_ms) {
  std::int64_t delay = kSysmonMinDelayNs;
  // A time slice shorter than Go's 10 ms needs sysmon to look at least twice per slice.
  std::int64_t max_delay = std::min(kSysmonMaxDelayNs, std::max(kSysmonMinDelayNs, sched->time_slice / 2));
  int idle = 0;
  std::int64_t trace_period = std::int64_t(trace_ms) * 1'000'000;
  std::int64_t next_trace = trace_ms > 0 ? nanotime() + trace_period : 0;
  std::int64_t next_gscavenge = nanotime() + kGScavengeEveryNs;
  cpuwait_start();
  while (!sysmon_stop_flag.load(std::memory_order_acquire)) {
    if (idle == 0) delay = kSysmonMinDelayNs;
    else if (idle > kSysmonIdleRounds && delay < max_delay) delay *= 2;
    if (delay > max_delay) delay = max_delay;
    // Wake in time for the next timer due on a busy P (timer-driven preemption in retake).
    std::int64_t sleep = delay;
    std::int64_t before = nanotime();
    for (P* p : sched->allp) {
      std::int64_t w = p->timers.when0.load(std::memory_order_relaxed);
      if (w != 0 && p->status.load(std::memory_order_relaxed) == PStatus::Running) {
        std::int64_t until = w + kTimerLateNs - before;
        if (until < sleep) sleep = until < kSysmonMinDelayNs ? kSysmonMinDelayNs : until;
      }
    }
    sleep_ns(sleep);
    std::int64_t now = nanotime();
    sched->sysmon_clock.store(now, std::memory_order_relaxed);
    if (sched->npidle.load(std::memory_order_acquire) == sched->procs && !sysmon_stop_flag.load()) {
      // Every P idle: nothing to watch. Sleep until work appears (wakep) or the trace is due.
      sched->sysmon_clock.store(0, std::memory_order_relaxed);  // parks read the clock meanwhile
      sched->sysmon_note.clear();
      sched->sysmon_deep.store(true, std::memory_order_seq_cst);
      if (sched->npidle.load(std::memory_order_seq_cst) == sched->procs) {
        // Pooled stacks still to give back: wake once more for that (a burst often ends in idle).
        std::int64_t until = sched->gfree_dirty.load(std::memory_order_relaxed) ? next_gscavenge : 0;
        if (next_trace && (!until || next_trace < until)) until = next_trace;
        if (until) sched->sysmon_note.sleep_for(until > now ? until - now : 0);
        else sched->sysmon_note.sleep();
      }
      sched->sysmon_deep.store(false, std::memory_order_relaxed);
      now = nanotime();
      sched->sysmon_clock.store(now, std::memory_order_relaxed);
      idle = 0;
      cpuwait_reset();
    }
    cpuwait_sample(now);
    if (retake(now) > 0) idle = 0;
    else idle++;
    // An overdue timer with nobody polling and no spinner: make sure some M looks at it.
    std::int64_t w = 0;
    for (P* p : sched->allp) {
      std::int64_t x = p->timers.when0.load(std::memory_order_acquire);
      if (x != 0 && (w == 0 || x < w)) w = x;
    }
    if (w != 0 && w + sched->time_slice < now && sched->poll_until.load() == 0) wakep();
    // Nobody has polled the network for 10 ms (every M busy): poll for them.
    if (netpoll_active() && !sched->poller_busy.load(std::memory_order_relaxed) &&
        netpoll_last() + kSysmonNetpollNs < coarse_nanotime()) {
      int n;
      if (G* list = netpoll(0, &n)) {
        inject_glist(list, n);
        idle = 0;
      }
    }
    if (next_trace && now >= next_trace) {
      schedtrace_line_to_stderr();
      next_trace = now + trace_period;
    }
    if (now >= next_gscavenge) {
      gfree_scavenge();
      next_gscavenge = now + kGScavengeEveryNs;
    }
  }
}

}  // namespace

void sysmon_wake() {
  if (sched->sysmon_deep.load(std::memory_order_relaxed)) sched->sysmon_note.wake();
}

void sysmon_start(int trace_ms) {
  sysmon_stop_flag.store(false);
  sysmon_thread = std::thread(sysmon_main, trace_ms);
}

void sysmon_stop() {
  if (!sysmon_thread.joinable()) return;
  sysmon_stop_flag.store(true, std::memory_order_release);
  sched->sysmon_note.wake();
  sysmon_thread.join();
}

}  // namespace mpg::detail
