// sched_test.cpp: the scheduler's invariants (Go's proc_test.go, in spirit).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "mpg/mpg.hpp"

using namespace std::chrono_literals;

namespace {

TEST(Run, ReturnsMainsCode) {
  EXPECT_EQ(mpg::run([] { return 7; }), 7);
  EXPECT_EQ(mpg::run([] {}), 0);
}

TEST(Run, MainIsGoroutineOne) {
  std::uint64_t id = 0;
  mpg::run([&] { id = mpg::goid(); });
  EXPECT_EQ(id, 1u);
  EXPECT_EQ(mpg::goid(), 0u);
}

TEST(Run, NestedRunThrows) {
  bool threw = false;
  mpg::run([&] {
    try {
      mpg::run([] {});
    } catch (const mpg::RuntimeMisuse&) {
      threw = true;
    }
  });
  EXPECT_TRUE(threw);
}

TEST(Spawn, ManyGoroutinesAllRun) {
  for (int procs : {1, 2, 4}) {
    std::atomic<int> n{0};
    mpg::run(
        [&] {
          mpg::WaitGroup wg;
          for (int i = 0; i < 100000; i++) {
            wg.add(1);
            mpg::go([&] {
              n.fetch_add(1, std::memory_order_relaxed);
              wg.done();
            });
          }
          wg.wait();
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(n.load(), 100000) << "procs=" << procs;
  }
}

TEST(Yield, PingPongAlternatesOnOneP) {
  std::vector<int> trace;
  mpg::run(
      [&] {
        mpg::WaitGroup wg;
        wg.add(2);
        for (int who = 0; who < 2; who++) {
          mpg::go([&, who] {
            for (int i = 0; i < 5; i++) {
              trace.push_back(who);
              mpg::yield();
            }
            wg.done();
          });
        }
        wg.wait();
      },
      mpg::Config{.procs = 1});
  ASSERT_EQ(trace.size(), 10u);
  for (std::size_t i = 2; i < trace.size(); i++) EXPECT_NE(trace[i], trace[i - 1]) << "at " << i;
}

TEST(Sleep, SleepsAtLeastTheDuration) {
  for (int procs : {1, 2}) {
    mpg::run(
        [&] {
          auto t0 = std::chrono::steady_clock::now();
          mpg::sleep_for(20ms);
          auto dt = std::chrono::steady_clock::now() - t0;
          EXPECT_GE(dt, 20ms);
          EXPECT_LT(dt, 500ms);
        },
        mpg::Config{.procs = procs});
  }
}

}  // namespace
