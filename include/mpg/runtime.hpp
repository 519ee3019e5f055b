// runtime.hpp: starting the runtime, spawning goroutines, yielding, sleeping, thread locking.
#pragma once
#include <chrono>
#include <cstdint>
#include <new>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>

#include "mpg/config.hpp"
#include "mpg/detail/spawn.hpp"

namespace mpg {

// GoOptions: per-spawn options (Go has none; C++ stacks cannot grow, so the size is a choice).
struct GoOptions {
  std::size_t stack_size = 0;  // 0: Config::stack_size
};

// go: spawns f as a new goroutine. f is moved into the goroutine; it runs on some M later. The
// new G goes to the spawning P's runnext, as Go's newproc does.
template <class F>
void go(GoOptions opts, F&& f, const std::source_location& where = std::source_location::current()) {
  detail::SpawnSlot s = detail::spawn_begin(opts.stack_size);
  detail::ClosureFns fns = detail::place_closure(s, std::forward<F>(f));
  detail::spawn_commit(s.g, fns, where);
}
template <class F>
void go(F&& f, const std::source_location& where = std::source_location::current()) {
  go(GoOptions{}, std::forward<F>(f), where);
}

// run: starts the runtime with cfg, runs main as the first goroutine (G 1) and returns when it
// does, with its return value (0 for a void main). Goroutines still alive then are abandoned
// (their stacks are freed without unwinding), as a Go program's are at exit. One run at a time
// per process; run may be called again after it returns.
template <class F>
int run(F&& main, Config cfg = {}) {
  using Fn = std::decay_t<F>;
  Fn fn(std::forward<F>(main));
  auto invoke = [](void* p) -> int {
    Fn& f = *static_cast<Fn*>(p);
    if constexpr (std::is_void_v<std::invoke_result_t<Fn&>>) {
      f();
      return 0;
    } else {
      return static_cast<int>(f());
    }
  };
  return detail::run_main(cfg, +invoke, &fn);
}

// yield: Gosched. The current goroutine goes to the back of the run queue.
void yield();

namespace detail {
void entersyscall();
void exitsyscall();
void nopreempt_enter();
void nopreempt_exit();
}  // namespace detail

// blocking: runs f, a call that may block its thread (file I/O, a blocking library, sleep(3)),
// and returns its result: Go's entersyscall/exitsyscall. The goroutine keeps its thread; if
// the call outlasts a sysmon tick while other work waits, sysmon hands the P to another thread,
// and on return the goroutine takes a P back (or waits for one). Cheap when the call is short:
// a few stores on entry, one CAS on return. f must not park the goroutine (no channel or mutex
// waits inside): it runs as a plain thread would. Exceptions from f propagate.
template <class F>
decltype(auto) blocking(F&& f) {
  detail::entersyscall();
  struct Exit {
    ~Exit() { detail::exitsyscall(); }
  } exit_guard;
  return std::forward<F>(f)();
}

// preempt_point: a place where a long computation offers to yield if it has used its time
// slice (cooperative preemption; one load when it has not).
void preempt_point();

// NoPreempt: while alive, the goroutine is never preempted asynchronously (it still yields at
// its own runtime calls). For short sections that must not be interrupted mid-way.
class NoPreempt {
 public:
  NoPreempt() { detail::nopreempt_enter(); }
  ~NoPreempt() { detail::nopreempt_exit(); }
  NoPreempt(const NoPreempt&) = delete;
  NoPreempt& operator=(const NoPreempt&) = delete;
};
// sleep_for / sleep_until: park the goroutine on a per-P timer.
void sleep_for(std::chrono::nanoseconds d);
void sleep_until(std::chrono::steady_clock::time_point t);
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
  sleep_for(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
}
// goid: the current goroutine's id (1 for main); 0 outside a goroutine.
std::uint64_t goid();
// in_goroutine: whether the caller runs on a goroutine.
bool in_goroutine();
// procs: the number of Ps of the running runtime.
int procs();

// lock_os_thread: wires the current goroutine to its OS thread until a matching number of
// unlock_os_thread calls (nested, Go's semantics). No other goroutine runs on that thread
// meanwhile. A goroutine that exits while locked takes its thread with it (the thread ends).
void lock_os_thread();
void unlock_os_thread();

// Stats: a snapshot of the scheduler's counters.
struct Stats {
  std::uint64_t goroutines = 0;  // live: runnable + running + waiting
  std::uint64_t runnable = 0, running = 0, waiting = 0;
  std::uint64_t spawned = 0;   // total spawned since run() began
  std::uint64_t switches = 0;  // context switches into goroutines
  std::uint64_t steals = 0;    // successful steals (batches)
  std::uint64_t stolen = 0;    // goroutines taken by steals
  std::uint64_t global_queue = 0;
  std::uint64_t parks = 0;     // M futex parks
  std::uint64_t preempt_coop = 0;     // preemptions honoured at a runtime entry
  std::uint64_t preempt_async = 0;    // preemptions by signal at a safe point
  std::uint64_t preempt_refused = 0;  // signals that found no safe point
  std::uint64_t retakes = 0;          // Ps taken back from blocking calls by sysmon
  std::uint64_t blocking_calls = 0;   // mpg::blocking calls
  // contended_windows: sysmon's ~10 ms windows in which this process's threads waited for a
  // CPU for half a CPU's worth of time or more; spread_cap: how many running Ps the netpoller
  // spreads readied Gs up to now (procs unless such waits were seen).
  std::uint64_t contended_windows = 0;
  int spread_cap = 0;
  int procs = 0, idle_procs = 0, threads = 0, idle_threads = 0, spinning = 0;
};
Stats stats();

// dump_goroutines: Go's goroutine dump: every live G with id, state, wait reason, wait time,
// creator and creation site. Also printed on SIGQUIT (then the process exits with 2, as Go).
std::string dump_goroutines();

}  // namespace mpg
