// cpuwait.cpp: how long this process's threads wait for a CPU, and what the scheduler does
// about it (docs/runtime.md, "Waiting for a CPU").
//
// Go spreads the Gs that a network poll readies over every idle P, starting an M for each
// (injectglist). With spare cores that is right. When the cores are taken (a load generator
// beside the server, another process), the woken M waits in the kernel's run queue for a core,
// or takes one from whoever holds it, and the Gs handed to it wait with it: on a 2-core
// machine beside wrk, the two-P servers had a worse p99 and lower throughput than one P
// (docs/servers.md).
//
// The signal: every ~10 ms sysmon reads each M's CPU time (its thread's CPU-time clock) and
// how long it slept (M::idle_ns, kept by each of the runtime's sleeps of an M). What is left
// of the window is time the thread was runnable but not running: it waited for a CPU. Summed
// over the Ms and rounded to whole CPUs (from half a CPU on), that is k. While k >= 1, the
// netpoller hands readied Gs to idle Ps only up to procs - k running Ps (sched->spread_cap);
// the rest stay on the polling P's ring, where that P runs them without a hand-off. Only the
// netpoller's spreading is capped: spawns, channel wake-ups and the steals of an M already
// spinning are Go's as before, so goroutines made runnable those ways use every P the kernel
// gives them.
//
// With the cap on, the second M sleeps and nobody waits, so the signal goes away: the cap is
// held for a while and then lifted to look again (a probe). A probe that finds the wait again
// within kProbeNs doubles the hold, up to kMaxHoldNs; one that does not resets it. So under a
// steady competitor the spreading is off but for a window every 1.6 s, and at most 1.6 s after
// the competitor leaves it is back.
//
// An M inside mpg::blocking (or one that entered or left one during the window) is left out:
// a thread blocked in a system call is neither sleeping in the runtime nor running, and would
// read as waiting for a CPU.
#include <pthread.h>

#include <algorithm>
#include <vector>

#include "runtime/sched.hpp"

namespace mpg::detail {

namespace {

// kWindowNs: the shortest span sysmon judges (it looks every 20 us to 10 ms).
constexpr std::int64_t kWindowNs = 10'000'000;
// kStaleNs: a gap this long since the last sample (sysmon slept deeply) is not judged.
constexpr std::int64_t kStaleNs = 50'000'000;
// kMinHoldNs / kMaxHoldNs: how long a cap is held before a probe; doubled while probes keep
// finding the wait.
constexpr std::int64_t kMinHoldNs = 100'000'000;
constexpr std::int64_t kMaxHoldNs = 1'600'000'000;
// kProbeNs: a wait found this soon after the cap was lifted counts as a failed probe.
constexpr std::int64_t kProbeNs = 50'000'000;

// State: sysmon's alone.
struct State {
  std::int64_t last = 0;         // when the previous window ended (0: none yet)
  std::int64_t hold = kMinHoldNs;
  std::int64_t hold_until = 0;   // while capped
  std::int64_t lifted_at = INT64_MIN / 2;
  bool capped = false;
  std::vector<M*> ms;            // a copy of allm, taken under the lock
};
State st;

std::int64_t thread_cpu_ns(const M* m) {
  timespec ts;
  if (clock_gettime(m->cpu_clock, &ts) != 0) return -1;
  return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// waited_ns: how long m's thread waited for a CPU since the last sample, or -1 if that cannot
// be told (no sample yet, inside or through a blocking call, a thread that ended). Each M's
// window is timed on its own, right before its CPU clock is read, so a delay of sysmon's
// between two Ms' reads is not counted as anyone's wait.
std::int64_t waited_ns(M* m) {
  if (!m->has_cpu_clock.load(std::memory_order_acquire) || m->exit_thread.load(std::memory_order_relaxed)) {
    m->sampled = false;
    return -1;
  }
  std::uint32_t calls = m->syscalls.load(std::memory_order_relaxed);
  std::int64_t now = nanotime();
  std::int64_t since = m->idle_since.load(std::memory_order_acquire);
  std::int64_t idle = m->idle_ns.load(std::memory_order_relaxed) + (since ? now - since : 0);
  std::int64_t cpu = thread_cpu_ns(m);
  bool comparable = m->sampled && calls == m->seen_syscalls && (calls & 1) == 0 && cpu >= 0;
  std::int64_t wall = now - m->seen_at;
  std::int64_t waited = comparable ? std::max<std::int64_t>(0, wall - (idle - m->seen_idle) - (cpu - m->seen_cpu)) : -1;
  m->seen_at = now;
  m->seen_idle = idle;
  m->seen_cpu = cpu;
  m->seen_syscalls = calls;
  m->sampled = cpu >= 0;
  return waited;
}

}  // namespace

void m_cpu_clock_init(M* m) {
  if (pthread_getcpuclockid(pthread_self(), &m->cpu_clock) == 0) m->has_cpu_clock.store(true, std::memory_order_release);
}

bool lock_sleep_begin() noexcept {
  M* m = current_m();
  if (!m || m->idle_since.load(std::memory_order_relaxed) != 0) return false;
  m->idle_begin();
  return true;
}

void lock_sleep_end() noexcept { current_m()->idle_end(); }

void cpuwait_start() { st = State{}; }

void cpuwait_reset() { st.last = 0; }

void cpuwait_sample(std::int64_t now) {
  if (st.last != 0 && now - st.last < kWindowNs) return;
  std::int64_t wall = now - st.last;
  bool judge = st.last != 0 && wall < kStaleNs;
  st.last = now;
  sched->lock.lock();
  st.ms.assign(sched->allm.begin(), sched->allm.end());
  sched->lock.unlock();
  std::int64_t waited = 0;
  for (M* m : st.ms) waited += std::max<std::int64_t>(0, waited_ns(m));
  int cpus = judge ? int((2 * waited + wall) / (2 * wall)) : 0;  // rounded to whole CPUs
  if (cpus >= 1) sched->contended_windows.fetch_add(1, std::memory_order_relaxed);
  if (cpus >= 1 && sched->contention_cap) {
    if (!st.capped) {
      st.hold = now - st.lifted_at < kProbeNs ? std::min(2 * st.hold, kMaxHoldNs) : kMinHoldNs;
      st.capped = true;
    }
    st.hold_until = now + st.hold;
    sched->spread_cap.store(std::max(1, sched->procs - cpus), std::memory_order_relaxed);
  } else if (st.capped && now >= st.hold_until) {
    // The hold is over: lift the cap and look again (also after a window not judged, such as
    // the first after a deep sleep: with every P idle there was nothing to wait for).
    st.capped = false;
    st.lifted_at = now;
    sched->spread_cap.store(sched->procs, std::memory_order_relaxed);
  }
}

}  // namespace mpg::detail
