// cpuwait_test.cpp: the measure of how long the Ms wait for a CPU, and the cap it sets on the
// netpoller's spreading (cpuwait.cpp).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "mpg/detail/lock.hpp"
#include "mpg/mpg.hpp"
#include "runtime/test_util.hpp"

using namespace std::chrono_literals;

namespace {

// Hog: a thread per CPU, outside the runtime, that keeps every core busy until stopped.
struct Hog {
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  Hog() {
    unsigned n = std::max(2u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; i++)
      threads.emplace_back([this] {
        while (!stop.load(std::memory_order_relaxed)) {
        }
      });
  }
  void end() {
    stop = true;
    for (auto& t : threads) t.join();
    threads.clear();
  }
  ~Hog() {
    if (!threads.empty()) end();
  }
};

// burn: two goroutines that compute until told to stop, so both Ps want a CPU. They yield now
// and then: without asynchronous preemption (TSan) the test's own goroutine would never run.
void burn(std::atomic<bool>& stop, mpg::WaitGroup& wg) {
  wg.add(2);
  for (int i = 0; i < 2; i++)
    mpg::go([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        auto until = std::chrono::steady_clock::now() + 100us;
        while (std::chrono::steady_clock::now() < until) {
        }
        mpg::yield();
      }
      wg.done();
    });
}

// await: polls cond every 10 ms for up to `limit`.
template <typename F>
bool await(F cond, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    mpg::sleep_for(10ms);
  }
  return cond();
}

}  // namespace

// With every core taken by other threads, two Ps that both want to run wait for a CPU: sysmon
// sees it and caps the spreading at one P; once the cores are free again the cap is lifted
// (a hold is 1.6 s at most).
TEST(CpuWait, CapFallsWhileTheCoresAreTakenAndLiftsAfter) {
  mpg::run(
      [] {
        EXPECT_EQ(mpg::stats().spread_cap, 2);
        std::atomic<bool> stop{false};
        mpg::WaitGroup wg;
        {
          Hog hog;
          burn(stop, wg);
          EXPECT_TRUE(await([] { return mpg::stats().spread_cap == 1; }, 5000ms))
              << "contended windows: " << mpg::stats().contended_windows;
          EXPECT_GT(mpg::stats().contended_windows, 0u);
          stop = true;
          wg.wait();
        }
        EXPECT_TRUE(await([] { return mpg::stats().spread_cap == 2; }, 5000ms));
      },
      mpg::Config{.procs = 2});
}

// Config::contention_cap = false: the waits are still counted, the cap never moves.
TEST(CpuWait, OffCountsTheWaitsButNeverCaps) {
  mpg::run(
      [] {
        std::atomic<bool> stop{false};
        mpg::WaitGroup wg;
        Hog hog;
        burn(stop, wg);
        bool counted = await([] { return mpg::stats().contended_windows > 0; }, 5000ms);
        int lowest = 2;
        for (int i = 0; i < 30; i++) {
          lowest = std::min(lowest, mpg::stats().spread_cap);
          mpg::sleep_for(10ms);
        }
        stop = true;
        wg.wait();
        hog.end();
        EXPECT_TRUE(counted);
        EXPECT_EQ(lowest, 2);
      },
      mpg::Config{.procs = 2, .contention_cap = false});
}

// A thread blocked in a system call (mpg::blocking) neither sleeps in the runtime nor runs: it
// must not read as waiting for a CPU. Two such calls count no wait. (Sysmon retakes both Ps
// within ~10 ms and then sleeps deeply, so few windows are judged: the first ones, where two
// blocked threads would read as two CPUs of wait without the exclusion; checked.)
TEST(CpuWait, BlockingCallsAreNotWaitsForACpu) {
  mpg::run(
      [] {
        mpg::WaitGroup wg;
        wg.add(2);
        for (int i = 0; i < 2; i++)
          mpg::go([&] {
            mpg::blocking([] { ::usleep(400'000); });
            wg.done();
          });
        wg.wait();
        EXPECT_EQ(mpg::stats().contended_windows, 0u);
        EXPECT_EQ(mpg::stats().spread_cap, 2);
      },
      mpg::Config{.procs = 2});
}

// A thread asleep in a contended runtime Lock does not run either, and must not read as waiting
// for a CPU: the Lock's futex sleep is bracketed like the runtime's own sleeps. The holder is a
// plain thread that keeps the Lock for 400 ms, so no thread of the run needs a CPU meanwhile,
// whatever else the machine runs. (The waiting goroutine is not preempted: a signal that finds a
// runtime Lock held, or wanted, by its thread leaves it be.)
TEST(CpuWait, ThreadsAsleepInALockAreNotWaitsForACpu) {
  mpg::run(
      [] {
        mpg::detail::Lock l;
        std::atomic<bool> held{false};
        std::thread holder([&] {
          l.lock();
          held = true;
          ::usleep(400'000);
          l.unlock();
        });
        while (!held) mpg::sleep_for(1ms);
        l.lock();
        l.unlock();
        holder.join();
        EXPECT_EQ(mpg::stats().contended_windows, 0u);
        EXPECT_EQ(mpg::stats().spread_cap, 2);
      },
      mpg::Config{.procs = 2});
}
