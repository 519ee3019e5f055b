// config.hpp: mpg::Config, the knobs of one mpg::run().
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace mpg {

// Config: tunables of the runtime, read once by mpg::run(). Zero means "the default".
struct Config {
  // procs: number of Ps (GOMAXPROCS). Default: CPUs allowed by the affinity mask and the cgroup
  // CPU quota (Go 1.25's rule); the environment variable MPG_PROCS overrides the default.
  int procs = 0;
  // stack_size: virtual size of a goroutine stack in bytes, guard page included. Committed
  // lazily by touch; default 256 KiB. Rounded up to a multiple of the page size.
  std::size_t stack_size = 0;
  // pin_procs: pin the M that holds P i to CPU (i mod allowed CPUs), the seed's "P binding".
  bool pin_procs = false;
  // schedtrace_ms: print Go's SCHED line every N ms (also MPG_DEBUG=schedtrace=N).
  int schedtrace_ms = 0;
  // max_threads: cap on M count, Go's debug.SetMaxThreads default.
  int max_threads = 10000;
  // time_slice: how long a goroutine may run before sysmon preempts it (Go fixes 10 ms).
  std::chrono::nanoseconds time_slice = std::chrono::milliseconds(10);
  // async_preempt: preempt goroutines that make no runtime calls, by signal (Go 1.14's
  // asynchronous preemption). Also off with MPG_DEBUG=asyncpreemptoff=1, and under TSan.
  bool async_preempt = true;
  // debug_migrate: a goroutine never resumes on the thread it last ran on (also
  // MPG_DEBUG=migrate=1). Slow; flushes out thread_local addresses cached across a switch.
  bool debug_migrate = false;
  // contention_cap: while this process's threads wait for a CPU (the cores are taken by other
  // processes), the netpoller hands readied goroutines to fewer idle Ps (docs/runtime.md,
  // "Waiting for a CPU"). Off: Go's spreading always (also MPG_DEBUG=contentioncap=0).
  bool contention_cap = true;
};

}  // namespace mpg
