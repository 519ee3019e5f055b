// mpg_preempt_bench: the C++ side of the preemption benchmarks (the Go side is
// bench/peers/preempt; tools/bench_preempt.py runs both and prints the table). Prints one JSON
// object per line, the same cases as the Go program:
//   ticker_lateness[/slice=1ms]  procs hogs spin with no calls while a goroutine reads a 1 ms
//                                Ticker: lateness of each tick against its schedule (p50, p99, max)
//   cpu_bound[/async=off]        4 goroutines compute a fixed floating-point load at procs=2 (ms):
//                                the throughput cost of the preemption machinery, on vs off
//   syscall_getpid               ns per mpg::blocking([]{ syscall(SYS_getpid); })
//   blocking_noop                ns per mpg::blocking around nothing; raw_getpid: the bare call
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "mpg/mpg.hpp"

namespace {

using Clock = std::chrono::steady_clock;

__attribute__((noinline)) void spin(const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) {
  }
}

void ticker_lateness(const char* name, std::chrono::nanoseconds slice, double seconds) {
  std::vector<double> late;
  mpg::run(
      [&] {
        std::atomic<bool> stop{false};
        mpg::WaitGroup wg;
        for (int i = 0; i < mpg::procs(); i++) {
          wg.add(1);
          mpg::go([&] {
            spin(stop);
            wg.done();
          });
        }
        const auto period = std::chrono::milliseconds(1);
        mpg::Ticker t(period);
        auto start = Clock::now();
        for (long k = 1; std::chrono::duration<double>(Clock::now() - start).count() < seconds; k++) {
          t.C.recv();
          auto due = start + k * period;
          auto l = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - due).count();
          late.push_back(double(std::max<long>(l, 0)));
          k = long((Clock::now() - start) / period);  // ticks missed while late are dropped, as in Go
        }
        t.stop();
        stop = true;
        wg.wait();
      },
      mpg::Config{.time_slice = slice});
  if (late.empty()) {
    std::fprintf(stderr, "%s: no tick in %.3f s\n", name, seconds);
    return;
  }
  std::sort(late.begin(), late.end());
  auto q = [&](double p) { return late[std::size_t(p * double(late.size() - 1))]; };
  std::printf("{\"name\": \"%s\", \"p50_us\": %.0f, \"p99_us\": %.0f, \"max_us\": %.0f, \"ticks\": %zu}\n", name, q(0.5), q(0.99),
              late.back(), late.size());
}

__attribute__((noinline)) double compute(int seed, long iters) {
  double x = 1.0 + seed * 1e-3, y = 0.5, z = 0.25;
  for (long i = 0; i < iters; i++) {
    x = std::fma(x, 1.0000001, y * 1e-9);
    y = y * 0.9999999 + z * 1e-7;
    z = z + x * 1e-12;
  }
  return x + y + z;
}

void cpu_bound(const char* name, bool async) {
  double ms = 0;
  volatile double sink = 0;
  mpg::Stats st;
  std::vector<long> tids(4, 0);
  mpg::run(
      [&] {
        auto t0 = Clock::now();
        mpg::WaitGroup wg;
        for (int i = 0; i < 4; i++) {
          wg.add(1);
          mpg::go([&, i] {
            sink = sink + compute(i, 50'000'000);
            tids[std::size_t(i)] = long(syscall(SYS_gettid));  // preempted, never moved: where it began
            wg.done();
          });
        }
        wg.wait();
        ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        st = mpg::stats();
      },
      mpg::Config{.procs = 2, .async_preempt = async});
  // split: how many of the 4 finished on the thread of the first one (2: evenly spread).
  long split = std::count(tids.begin(), tids.end(), tids[0]);
  std::printf("{\"name\": \"%s\", \"ms\": %.3f, \"preempt_async\": %llu, \"preempt_coop\": %llu, \"steals\": %llu, "
              "\"same_thread_as_first\": %ld}\n",
              name, ms, (unsigned long long)st.preempt_async, (unsigned long long)st.preempt_coop, (unsigned long long)st.steals, split);
}

void per_call(const char* name, long n, void (*body)()) {
  double ns = 0;
  mpg::run(
      [&] {
        auto t0 = Clock::now();
        for (long i = 0; i < n; i++) body();
        ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / double(n);
      },
      mpg::Config{.procs = 1});
  std::printf("{\"name\": \"%s\", \"ns\": %.2f}\n", name, ns);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"preemption benchmarks (one JSON line per case)"};
  double seconds = 1.0;
  std::string only;
  app.add_option("seconds", seconds, "length of each ticker case")->check(CLI::PositiveNumber);
  app.add_option("--only", only, "run only the cases whose name starts with this");
  CLI11_PARSE(app, argc, argv);
  auto want = [&](const char* name) { return std::string_view(name).starts_with(only); };
  if (want("ticker_lateness")) ticker_lateness("ticker_lateness", std::chrono::milliseconds(10), seconds);
  if (want("ticker_lateness/slice=1ms")) ticker_lateness("ticker_lateness/slice=1ms", std::chrono::milliseconds(1), seconds);
  if (want("cpu_bound")) cpu_bound("cpu_bound", true);
  if (want("cpu_bound/async=off")) cpu_bound("cpu_bound/async=off", false);
  if (want("syscall_getpid")) per_call("syscall_getpid", 2'000'000, [] { mpg::blocking([] { return syscall(SYS_getpid); }); });
  if (want("blocking_noop")) per_call("blocking_noop", 20'000'000, [] { mpg::blocking([] {}); });
  if (want("raw_getpid")) per_call("raw_getpid", 2'000'000, [] { syscall(SYS_getpid); });
  return 0;
}
