// sched.hpp: P, M and the scheduler's global state, and the internal calls the rest of mpg
// (channels, sync, timers) makes into the scheduler: park, ready, current_g.
#pragma once
#include <time.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <source_location>
#include <thread>
#include <vector>

#include "mpg/config.hpp"
#include "mpg/detail/spawn.hpp"
#include "runtime/g.hpp"
#include "runtime/lock.hpp"
#include "runtime/runq.hpp"
#include "runtime/timers.hpp"

namespace mpg::detail {

// PStatus: who owns a P.
enum class PStatus : std::uint8_t {
  Idle,     // on the scheduler's idle list, owned by the scheduler lock
  Running,  // owned by exactly one M (p->m)
  Syscall,  // its M is in mpg::blocking; up for grabs: the M (on return) or sysmon (retake) CASes it
};

// P: the right to run Gs, with its run queues, timers and G pool. Owned by the M holding it;
// runq, runnext and timers are also touched by thieves (atomics, the timer lock).
struct alignas(64) P {
  int id = 0;
  std::atomic<PStatus> status{PStatus::Idle};  // transitions out of Syscall by CAS
  std::atomic<M*> m{nullptr};         // holder (written by the holder; read by sysmon)
  P* link = nullptr;                  // idle list link (sched.lock)
  std::atomic<std::uint32_t> schedtick{0};    // bumped (owner, relaxed) per schedule that starts a new time slice
  std::atomic<std::uint32_t> syscalltick{0};  // bumped (owner, relaxed) per blocking call
  // What sysmon saw last (sysmon only): a tick unchanged for a time slice means one G ran that long.
  struct SysmonView {
    std::uint32_t schedtick = 0, syscalltick = 0;
    std::int64_t schedwhen = 0, syscallwhen = 0;
  } sysmon;
  LocalRunQueue runq;
  std::atomic<G*> runnext{nullptr};
  TimerHeap timers;
  GStack<512> gfree;                  // free Gs of the default stack size (owner only; Go caches 64; see gfree_trim)
  // counters (owner-written, read racily by stats())
  std::atomic<std::uint64_t> spawned{0}, switches{0}, steals{0}, stolen{0};
  std::atomic<std::uint64_t> preempt_coop{0}, blocking_calls{0};
};

// M: an OS thread. Runs the scheduler on its own stack ("g0") and switches into Gs.
struct M {
  int id = 0;
  int tid = 0;                        // kernel thread id (for tgkill)
  std::thread thread;                 // empty for m0 (the thread that called mpg::run)
  Ctx g0ctx = nullptr;                // g0's saved context while a G runs
  Fiber g0fiber;
  std::atomic<G*> curg{nullptr};      // written by this M; read by sysmon and signal handlers
  P* p = nullptr;
  P* oldp = nullptr;                  // the P left in Syscall state during mpg::blocking
  std::atomic<bool> signal_pending{false};  // a preemption signal is on its way (no storms)
  P* nextp = nullptr;                 // P handed over by whoever woke this M
  bool spinning = false;
  // exit_thread: the locked G exited: this thread ends. Written by the M itself, read by
  // checkdead on any thread (a stale false only counts the M as still running, which it is).
  std::atomic<bool> exit_thread{false};
  Note park;
  M* link = nullptr;                  // idle list link (sched.lock)
  G* lockedg = nullptr;               // G wired to this M by lock_os_thread
  G* handoff = nullptr;               // a runnable G wired to another M, for g0 to hand over
  // resume: this M's asynchronously preempted Gs, FIFO through schedlink; only this M may run them.
  G* resume = nullptr;
  G* resume_tail = nullptr;
  // (resume is written by this M only, with relaxed atomic stores: sysmon peeks at it.)
  int nresume = 0;  // how many wait in it (written by this M, read by other Ms: relaxed atomics)
  void resume_push(G* g) {
    __atomic_store_n(&nresume, nresume + 1, __ATOMIC_RELAXED);
    g->schedlink = nullptr;
    if (resume_tail) resume_tail->schedlink = g; else __atomic_store_n(&resume, g, __ATOMIC_RELAXED);
    resume_tail = g;
  }
  G* resume_pop() {
    G* g = resume;
    if (g) {
      __atomic_store_n(&resume, g->schedlink, __ATOMIC_RELAXED);
      __atomic_store_n(&nresume, nresume - 1, __ATOMIC_RELAXED);
      if (!resume) resume_tail = nullptr;
      g->schedlink = nullptr;
    }
    return g;
  }
  bool has_resume() const { return __atomic_load_n(&resume, __ATOMIC_RELAXED) != nullptr; }
  // resume_passed: find_runnable took a global or stolen G over this M's preempted ones; the
  // next search resumes one first (they alternate, so neither side starves the other).
  bool resume_passed = false;
  // ring_left: the ring G this M last left to a thief when it resumed a preempted G instead
  // (leave_ring_to_thief). If that G is still first in the ring next time, it runs here: it waits
  // one turn at most. Compared, never dereferenced.
  const G* ring_left = nullptr;
  // slice_spent: the G leaving was preempted; the next one starts a slice of its own even when
  // it comes from runnext (which otherwise inherits the slice, as in Go: a goroutine woken by
  // its partner shares the partner's slice). Inheriting a spent slice got the next G preempted
  // within one sysmon round, so one preemption wired two or three Gs to this M at once.
  bool slice_spent = false;
  FastRand rand{0};
  // the action g0 runs after a G switches out (Go's mcall functions)
  enum class After : std::uint8_t { None, Yield, YieldGlobal, AsyncPreempt, Park, Exit, SyscallNoP } after = After::None;
  bool (*unlockf)(G*, void*) = nullptr;
  void* unlock_arg = nullptr;
  TimerNode* arm_timer = nullptr;     // arm after parking (sleep, select timeout)
  std::int64_t arm_when = 0;
  void* sigaltstack = nullptr;

  // --- CPU-wait accounting (cpuwait.cpp): written by this M, read by sysmon ---
  // idle_ns: time this M has slept (its park note, the poller's wait, a thief's runnext
  // sleep); idle_since: when the current sleep began (0: awake); syscalls: mpg::blocking entries
  // and exits (odd: inside one). cpu_clock: this thread's CPU-time clock (has_cpu_clock once
  // known).
  std::atomic<std::int64_t> idle_ns{0};
  std::atomic<std::int64_t> idle_since{0};
  std::atomic<std::uint32_t> syscalls{0};
  clockid_t cpu_clock{};
  std::atomic<bool> has_cpu_clock{false};
  // sysmon's previous sample of this M (sysmon only; valid while sampled).
  std::int64_t seen_at = 0, seen_idle = 0, seen_cpu = 0;
  std::uint32_t seen_syscalls = 0;
  bool sampled = false;

  // idle_begin / idle_end bracket every sleep of this M's thread. idle_end adds the sleep to
  // idle_ns before it clears idle_since (release; sysmon loads idle_since with acquire first):
  // a sample that straddles the end counts the sleep twice (a wait underestimated), never zero
  // times (a wait invented).
  void idle_begin() { idle_since.store(nanotime(), std::memory_order_relaxed); }
  void idle_end() {
    std::int64_t t0 = idle_since.load(std::memory_order_relaxed);
    idle_ns.store(idle_ns.load(std::memory_order_relaxed) + (nanotime() - t0), std::memory_order_relaxed);
    idle_since.store(0, std::memory_order_release);
  }
  void count_syscall() { syscalls.store(syscalls.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
  // sleep_on_park: sleeps until the park note is woken, then clears it; counted as idle.
  void sleep_on_park() {
    idle_begin();
    park.sleep();
    idle_end();
    park.clear();
  }
};

// Sched: the scheduler's global state (Go's schedt). One per mpg::run.
struct Sched {
  Lock lock;                          // guards the fields marked (lock)
  std::vector<P*> allp;               // fixed for the run
  std::vector<M*> allm;               // (lock) append-only during the run
  int procs = 0;
  std::size_t stack_size = kDefaultStackSize;
  bool pin_procs = false;
  int max_threads = 10000;
  std::vector<int> cpus;              // allowed CPUs, for pin_procs

  M* midle = nullptr;                 // (lock)
  int nmidle = 0;                     // (lock)
  int nmidlelocked = 0;               // (lock) Ms parked in stoplockedm
  P* pidle = nullptr;                 // (lock)
  std::atomic<int> npidle{0};         // written under lock, read anywhere
  std::atomic<int> nmspinning{0};
  // spread_cap: how many Ps may run at once before the netpoller stops handing its readied Gs
  // to idle Ps (inject_glist); procs unless sysmon saw this process's threads wait for a CPU
  // (cpuwait.cpp). contention_cap: whether sysmon may lower it (Config::contention_cap).
  std::atomic<int> spread_cap{0};
  bool contention_cap = true;
  std::atomic<std::uint64_t> contended_windows{0};
  GRing runq;                         // (lock) global run queue
  std::atomic<std::uint32_t> runqsize{0};
  std::atomic<std::uint64_t> nparks{0};

  // Free Gs beyond the P caches, by stack size (lock gfree_lock).
  Lock gfree_lock;
  std::vector<G*> gfree;              // default stack size
  std::atomic<std::uint32_t> ngfree{0}; // gfree.size(), readable without the lock (a hint)
  std::vector<G*> gfree_other;        // other sizes (size in g->stack.size)
  // gfree_dirty: Gs joined `gfree` since sysmon's last gfree_scavenge (a hint).
  std::atomic<bool> gfree_dirty{false};

  // The timer poller: at most one M sleeps until the next timer (Go's netpoll block). pollUntil
  // is its wake-up time (0: nobody polls). Breaking it wakes that M early.
  Note poll_note;
  std::atomic<bool> poll_in_epoll{false};  // the poller sleeps in epoll_wait (else on poll_note)
  std::atomic<bool> poller_busy{false};
  std::atomic<std::int64_t> poll_until{0};

  std::atomic<std::uint64_t> goid_gen{0};
  std::atomic<bool> exiting{false};
  int exit_code = 0;
  std::atomic<int> external_refs{0};  // foreign threads that may inject work (disables deadlock check)

  Lock allg_lock;
  G* allg = nullptr;                  // every G ever carved (allg_lock for writers)
  std::int64_t start_time = 0;

  // Preemption and sysmon.
  std::int64_t time_slice = 10'000'000;  // ns a G may run before sysmon preempts it (Go's forcePreemptNS)
  bool async_preempt = true;
  bool debug_migrate = false;            // MPG_DEBUG=migrate=1: never resume a G on its last M
  std::atomic<std::uint64_t> preempt_async{0}, preempt_refused{0}, preempt_requests{0};
  std::atomic<std::uint64_t> retakes{0};
  std::atomic<std::uint64_t> spawned_outside{0};  // spawns from threads without a P
  std::atomic<bool> sysmon_deep{false};  // sysmon sleeps until woken (every P idle)
  // sysmon_clock: nanotime() as sysmon last saw it (every <= 10 ms while a P runs); 0 while
  // sysmon sleeps deeply or has not started. A parking G stamps its wait with it (park_on), so
  // a park costs no clock read; the goroutine dump's wait times run up to 10 ms long.
  std::atomic<std::int64_t> sysmon_clock{0};
  Note sysmon_note;
};

extern Sched* sched;

// ring_head_for_thief: the G first in p's ring if m (which has a preempted G to resume) should
// leave it to another M: nothing in runnext, not the G m left last time (m->ring_left), and a
// thief could come soon (a P idle, for which wakep can start an M, or an M spinning). Else null.
// The policy is leave_ring_to_thief's (sched.cpp); direct_next asks it too.
inline G* ring_head_for_thief(const M* m, P* p) {
  if (p->runnext.load(std::memory_order_relaxed) != nullptr) return nullptr;
  G* first = p->runq.peek(0);
  if (!first || first == m->ring_left) return nullptr;
  if (sched->npidle.load(std::memory_order_relaxed) == 0 && sched->nmspinning.load(std::memory_order_relaxed) == 0)
    return nullptr;
  return first;
}

// current_m / current_g: the calling thread's M and the G it runs. noinline: a goroutine can
// resume on another thread, so a thread_local address must never be cached across a switch.
M* current_m();
G* current_g();
void set_current_m(M* m);

// park: parks the current G with `reason`. After the G has switched out, g0 calls unlockf(g, arg)
// (if non-null); if it returns false the G is made runnable again at once. Returns when readied.
void park(WaitReason reason, bool (*unlockf)(G*, void*) = nullptr, void* arg = nullptr);
// park_on: park() for a caller that looked up its M and G already (m = current_m(), g its curg,
// not null; no switch since the lookup). The channel hand-off path saves the lookups this way.
void park_on(M* m, G* g, WaitReason reason, bool (*unlockf)(G*, void*), void* arg);
// park_with_timer: as park, and arms `timer` to fire at `when` once the G is off its stack.
void park_with_timer(WaitReason reason, bool (*unlockf)(G*, void*), void* arg, TimerNode* timer, std::int64_t when);
// ready: makes a Waiting G runnable, in the caller's runnext (Go's goready). From a thread
// without a P, onto the global queue.
void ready(G* g);
// ready_on: ready() for a caller that looked up its M already (m = current_m(), null outside the
// runtime; no switch since the lookup).
void ready_on(M* m, G* g);
// yield_global: the current G goes to the back of the global queue (Go's Gosched).
void yield_global();
// async_yield: as yield_global, for an asynchronously preempted G (which stays wired to its M).
void async_yield();
// syscall_exit_nop: the G returns from a blocking call and found no P: queue it, idle the M.
void syscall_exit_nop(M* m, G* g);
// reacquire_idle_p: an M without a P takes an idle one if there is one.
bool reacquire_idle_p(M* m);
// wakep: starts a spinning M if there are idle Ps and no spinner.
void wakep();
// gfree_scavenge: gives back the stacks of the global pool's coldest Gs beyond kGPoolResident
// but for each G's top page (Go frees pooled stacks at GC). sysmon calls it once a second.
void gfree_scavenge();
// wakep_unfenced: wakep without its fence, for a caller whose G is on its own running P (a
// missed wake-up there costs parallelism, not progress: see ready()).
void wakep_unfenced();
// wake_poller: wakes the M sleeping until the next timer if `when` is earlier than its wake-up.
void wake_poller(std::int64_t when);
// break_poller: wakes the poller M, wherever it sleeps (futex or epoll_wait).
void break_poller();

// Scheduler internals shared between sched.cpp (finding work), switch.cpp (running it) and
// proc.cpp. kFairnessTick: every 61st schedule takes from the global queue first (Go's value).
inline constexpr std::uint32_t kFairnessTick = 61;
G* runqget(P* p, bool* inherit);
G* find_runnable(M* m, bool* inherit);  // blocks until there is a G for m; nullptr: the run ends
void startm(P* p, bool spinning);
void stopm(M* m);
P* pidleget();                          // sched->lock held
void reset_spinning(M* m);
void runqput(P* p, G* g, bool next);
// runq_empty: p had no runnable G at one instant (never spuriously true while Gs move).
bool runq_empty(P* p);
void globrunqput_batch(G** gs, std::uint32_t n);
void schedule_loop(M* m);             // g0's loop; returns when the run ends or the thread must exit
void newm(P* p, bool spinning);
void gfput(P* p, G* g);
// gfree_trim: p (owned by the caller, about to go idle) keeps Go's 64 free Gs, the global pool
// takes the rest.
void gfree_trim(P* p);
void destroy_g_closure(G* g);
void checkdead();                     // under sched->lock
void acquirep(M* m, P* p);
P* releasep(M* m);
void handoffp(P* p);
void start_thread(M* m);
// g_landed: a new G's first act (g_entry): finish the switch that started it.
void g_landed(Transfer t);
// goexit: the finished G leaves the CPU for the last time.
[[noreturn]] void goexit(M* m, G* g);

// Debugging (debug.cpp).
std::string goroutine_dump();
void write_all(int fd, const char* s, std::size_t n);
[[noreturn]] void fatal(const char* msg, bool with_dump);
void schedtrace_line_to_stderr();
// sysmon (sysmon.cpp): the monitor thread with no P.
void sysmon_start(int schedtrace_ms);
// cpuwait_sample: sysmon's look at how long this process's Ms waited for a CPU; adjusts
// spread_cap (cpuwait.cpp). cpuwait_start: fresh state for a run. cpuwait_reset: forget the
// previous sample (after sysmon slept deeply).
void cpuwait_sample(std::int64_t now);
void cpuwait_start();
void cpuwait_reset();
// m_cpu_clock_init: the calling thread records its CPU-time clock in m.
void m_cpu_clock_init(M* m);
void sysmon_stop();
void sysmon_wake();
// Preemption (preempt.cpp).
void preempt_init();
// preempt_pc_is_safe: false for a PC in runtime code (mpg_text), in a runtime library (libc,
// libstdc++, the sanitizers, the loader, the vDSO) or in a PLT entry; valid after preempt_init.
bool preempt_pc_is_safe(std::uintptr_t pc);
void preempt_signal(M* m);           // ask m's running G to stop, by signal (async preemption)
void preempt_now(G* g);              // the running G honours its preempt flag (cooperative)
void install_signal_handlers();
void restore_signal_handlers();
void m_signal_stack_init(M* m);
void m_signal_stack_free(M* m);

}  // namespace mpg::detail
