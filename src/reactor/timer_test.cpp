// timer_test.cpp: the timer heap on a fake clock, and timers on a live loop.
#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <vector>

#include "mpg/reactor/event_loop.hpp"
#include "reactor/timer_queue.hpp"
#include "reactor/timing_wheel.hpp"
#include "runtime/test_util.hpp"

namespace mpg::reactor {
namespace {

using detail::TimerQueue;

TEST(TimerQueue, FiresInDeadlineOrderThenInsertionOrder) {
  TimerQueue q;
  std::vector<int> fired;
  q.add(1, 300, 0, [&] { fired.push_back(3); });
  q.add(2, 100, 0, [&] { fired.push_back(1); });
  q.add(3, 200, 0, [&] { fired.push_back(2); });
  q.add(4, 200, 0, [&] { fired.push_back(22); });
  EXPECT_EQ(q.next_deadline(), 100);
  EXPECT_EQ(q.run_due(99), 0);
  EXPECT_EQ(q.run_due(250), 3);
  EXPECT_EQ(q.run_due(1000), 1);
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 22, 3}));
  EXPECT_EQ(q.next_deadline(), -1);
}

TEST(TimerQueue, PeriodicKeepsItsCadenceAndCanCancelItself) {
  TimerQueue q;
  int n = 0;
  q.add(1, 10, 10, [&] {
    if (++n == 5) q.cancel(1);
  });
  for (std::int64_t t = 0; t <= 200; t += 5) q.run_due(t);
  EXPECT_EQ(n, 5);
  EXPECT_EQ(q.size(), 0u);
  // A timer far behind is re-armed from now, not fired once per missed interval.
  int m = 0;
  q.add(2, 10, 10, [&] { m++; });
  q.run_due(1000);
  EXPECT_EQ(m, 1);
  EXPECT_EQ(q.next_deadline(), 1010);
}

TEST(TimerQueue, CancelUnderChurnFiresExactlyTheSurvivorsInOrder) {
  // Random adds and cancels; every survivor fires once, in deadline order, no cancelled one
  // fires, and the heap does not keep the cancelled nodes.
  TimerQueue q;
  std::mt19937 rng(42);
  const int kTimers = static_cast<int>(mpg::testing::scaled(20000));
  std::vector<bool> cancelled(static_cast<std::size_t>(kTimers) + 1, false);
  std::vector<std::int64_t> when(static_cast<std::size_t>(kTimers) + 1);
  std::vector<std::uint64_t> fired;
  for (int id = 1; id <= kTimers; id++) {
    when[static_cast<std::size_t>(id)] = static_cast<std::int64_t>(rng() % 10000);
    q.add(static_cast<std::uint64_t>(id), when[static_cast<std::size_t>(id)], 0,
          [&fired, id] { fired.push_back(static_cast<std::uint64_t>(id)); });
    if (rng() % 3 != 0) {
      std::uint64_t victim = 1 + rng() % static_cast<std::uint64_t>(id);
      if (q.cancel(victim)) cancelled[victim] = true;
    }
  }
  EXPECT_LE(q.heap_size(), 2 * q.size() + 64);
  q.run_due(10000);
  std::size_t expect = 0;
  for (int id = 1; id <= kTimers; id++) expect += cancelled[static_cast<std::size_t>(id)] ? 0 : 1;
  ASSERT_EQ(fired.size(), expect);
  for (std::size_t i = 0; i < fired.size(); i++) {
    EXPECT_FALSE(cancelled[fired[i]]);
    if (i > 0) {
      auto a = when[fired[i - 1]], b = when[fired[i]];
      ASSERT_TRUE(a < b || (a == b && fired[i - 1] < fired[i])) << "out of order at " << i;
    }
  }
}

TEST(TimingWheel, DueAfterTheScheduledTicks) {
  detail::TimingWheel w(5);
  w.schedule(7, 2);
  w.schedule(8, 100);  // clamped to the span (4 ticks)
  EXPECT_TRUE(w.advance().empty());
  EXPECT_EQ(w.advance(), (std::vector<std::uint64_t>{7}));
  EXPECT_TRUE(w.advance().empty());
  EXPECT_EQ(w.advance(), (std::vector<std::uint64_t>{8}));
}

TEST(LoopTimers, RunAfterFiresInOrderAndCancelWorksFromAnotherThread) {
  EventLoop loop;
  std::vector<int> fired;
  loop.run_after(std::chrono::milliseconds(30), [&] { fired.push_back(3); });
  loop.run_after(std::chrono::milliseconds(10), [&] { fired.push_back(1); });
  loop.run_after(std::chrono::milliseconds(20), [&] { fired.push_back(2); });
  TimerId doomed = loop.run_after(std::chrono::milliseconds(25), [&] { fired.push_back(99); });
  std::thread canceller([&] { loop.cancel(doomed); });
  canceller.join();
  int ticks = 0;
  TimerId every = loop.run_every(std::chrono::milliseconds(5), [&] { ticks++; });
  loop.run_after(std::chrono::milliseconds(60), [&] {
    loop.cancel(every);
    loop.stop();
  });
  auto t0 = std::chrono::steady_clock::now();
  loop.run();
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 3}));
  EXPECT_GE(ticks, 3);
  EXPECT_LE(ticks, 12);
  EXPECT_GE(took, std::chrono::milliseconds(59));
  EXPECT_LT(took, std::chrono::seconds(5));
}

}  // namespace
}  // namespace mpg::reactor
