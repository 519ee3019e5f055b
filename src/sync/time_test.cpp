// time_test.cpp: sleep_for, Timer, Ticker, after and after_func (Go's time package tests, in
// spirit): they fire no earlier than asked, not absurdly later, once (or once per period), can
// be stopped and reset, and keep firing while goroutines keep every P busy.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <vector>

#include "mpg/mpg.hpp"
#include "runtime/test_util.hpp"

using namespace std::chrono_literals;
using mpg::testing::max_live;
using mpg::testing::scaled;
using mpg::testing::Rng;
using mpg::testing::under_sanitizer;
using Clock = std::chrono::steady_clock;

namespace {

// slack: how late a timed wake-up may be (sanitizers slow everything down).
Clock::duration slack() { return under_sanitizer() ? 1000ms : 200ms; }

// wait_alone: main waits until it is the only goroutine left, so that goroutines which signalled
// completion have also destroyed their closures (after_func's std::function may own heap
// memory) before mpg::run returns. False on a 5 s timeout.
bool wait_alone() {
  auto deadline = Clock::now() + 5s;
  while (mpg::stats().goroutines > 1) {
    if (Clock::now() > deadline) return false;
    mpg::sleep_for(100us);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// sleep_for.

// Invariant: sleep_for(d) returns no earlier than d and not absurdly later, alone or with many
// concurrent sleepers; non-positive durations return at once; sleep_until honours its deadline.
TEST(Sleep, AccurateAloneAndConcurrent) {
  for (int procs : {1, 2, 4}) {
    int early = 0, late = 0;
    mpg::run(
        [&] {
          for (auto d : {1ms, 5ms, 20ms}) {
            auto t0 = Clock::now();
            mpg::sleep_for(d);
            auto dt = Clock::now() - t0;
            if (dt < d) early++;
            if (dt > d + slack()) late++;
          }
          auto t0 = Clock::now();
          mpg::sleep_for(0ms);
          mpg::sleep_for(-5ms);
          if (Clock::now() - t0 > slack()) late++;
          auto until = Clock::now() + 7ms;
          mpg::sleep_until(until);
          if (Clock::now() < until) early++;
          if (Clock::now() > until + slack()) late++;

          const int n = int(max_live(500));
          std::atomic<int> e{0}, l{0};
          mpg::WaitGroup wg;
          Rng r{std::uint64_t(procs)};
          for (int i = 0; i < n; i++) {
            auto d = std::chrono::microseconds(500 + r.below(20000));
            wg.add(1);
            mpg::go([&, d] {
              auto t0 = Clock::now();
              mpg::sleep_for(d);
              auto dt = Clock::now() - t0;
              if (dt < d) e++;
              if (dt > d + slack()) l++;
              wg.done();
            });
          }
          wg.wait();
          early += e;
          late += l;
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(early, 0) << "procs=" << procs;
    EXPECT_EQ(late, 0) << "procs=" << procs;
  }
}

// ---------------------------------------------------------------------------------------------
// Timer.

// Invariant: a Timer sends once on C, no earlier than its duration; its value is the fire time;
// stop after firing reports false.
TEST(Timer, FiresOnceOnC) {
  for (int procs : {1, 2}) {
    mpg::run(
        [] {
          auto t0 = Clock::now();
          mpg::Timer t(10ms);
          EXPECT_EQ(t.C.cap(), 1u);
          std::optional<Clock::time_point> v = t.C.recv();
          auto t1 = Clock::now();
          ASSERT_TRUE(v.has_value());
          EXPECT_GE(*v - t0, 10ms);
          EXPECT_LE(*v, t1);
          EXPECT_LT(t1 - t0, 10ms + slack());
          mpg::sleep_for(30ms);
          EXPECT_EQ(t.C.try_recv(), std::nullopt);  // once only
          EXPECT_FALSE(t.stop());
        },
        mpg::Config{.procs = procs});
  }
}

// Invariant: stop before the timer fires returns true and nothing ever arrives on C; a second
// stop returns false.
TEST(Timer, StopBeforeFiring) {
  for (int procs : {1, 2}) {
    mpg::run(
        [] {
          mpg::Timer t(20ms);
          mpg::sleep_for(2ms);
          EXPECT_TRUE(t.stop());
          EXPECT_FALSE(t.stop());
          mpg::sleep_for(40ms);
          EXPECT_EQ(t.C.try_recv(), std::nullopt);
          EXPECT_EQ(t.C.len(), 0u);
          // Many timers stopped at once: none fires.
          std::vector<std::unique_ptr<mpg::Timer>> ts;
          for (int i = 0; i < 200; i++) ts.push_back(std::make_unique<mpg::Timer>(std::chrono::milliseconds(5 + i % 10)));
          int stopped = 0;
          for (auto& x : ts) stopped += x->stop();
          EXPECT_EQ(stopped, 200);
          mpg::sleep_for(30ms);
          int arrived = 0;
          for (auto& x : ts) arrived += x->C.try_recv().has_value();
          EXPECT_EQ(arrived, 0);
        },
        mpg::Config{.procs = procs});
  }
}

// Invariant: reset re-arms from now: it reports whether the timer was still active; a timer
// reset before it fires fires only at the new time; a fired or stopped timer fires again after
// a reset.
TEST(Timer, Reset) {
  for (int procs : {1, 2}) {
    mpg::run(
        [] {
          // Extend before firing: nothing at the old deadline, one value after the new one.
          auto t0 = Clock::now();
          mpg::Timer t(10ms);
          mpg::sleep_for(3ms);
          EXPECT_TRUE(t.reset(40ms));
          auto reset_at = Clock::now();
          mpg::sleep_for(20ms);  // past the old deadline
          EXPECT_EQ(t.C.try_recv(), std::nullopt);
          auto v = t.C.recv();
          ASSERT_TRUE(v.has_value());
          EXPECT_GE(*v - reset_at, 40ms);
          EXPECT_LT(*v - t0, 43ms + slack());
          mpg::sleep_for(10ms);
          EXPECT_EQ(t.C.try_recv(), std::nullopt);  // the first arm never fires

          // Fired: reset reports false and it fires again.
          auto t1 = Clock::now();
          EXPECT_FALSE(t.reset(5ms));
          v = t.C.recv();
          ASSERT_TRUE(v.has_value());
          EXPECT_GE(*v - t1, 5ms);

          // Stopped: reset reports false and it fires.
          EXPECT_FALSE(t.reset(1h));  // it had fired: not active
          EXPECT_TRUE(t.stop());
          auto t2 = Clock::now();
          EXPECT_FALSE(t.reset(5ms));
          v = t.C.recv();
          ASSERT_TRUE(v.has_value());
          EXPECT_GE(*v - t2, 5ms);

          // Shorten: fires at the new, earlier time.
          auto t3 = Clock::now();
          mpg::Timer u(1h);
          EXPECT_TRUE(u.reset(5ms));
          v = u.C.recv();
          ASSERT_TRUE(v.has_value());
          EXPECT_GE(*v - t3, 5ms);
          EXPECT_LT(*v - t3, 5ms + slack());
        },
        mpg::Config{.procs = procs});
  }
}

// ---------------------------------------------------------------------------------------------
// Ticker.

// Invariant: a Ticker ticks repeatedly at about its period (no earlier on average), drops ticks
// for a slow receiver (C holds one), and stop ends the ticks.
TEST(Ticker, TicksAtAboutThePeriodThenStops) {
  for (int procs : {1, 2}) {
    mpg::run(
        [] {
          const auto period = 5ms;
          auto t0 = Clock::now();
          mpg::Ticker tk(period);
          std::vector<Clock::time_point> ticks;
          for (int i = 0; i < 6; i++) {
            auto v = tk.C.recv();
            ASSERT_TRUE(v.has_value());
            ticks.push_back(*v);
          }
          auto t1 = Clock::now();
          EXPECT_GE(ticks[0] - t0, period);
          EXPECT_GE(t1 - t0, 6 * period);  // tick k is due at t0 + k * period
          EXPECT_LT(t1 - t0, 6 * period + slack());
          for (std::size_t i = 1; i < ticks.size(); i++) EXPECT_GT(ticks[i], ticks[i - 1]);

          // A slow receiver: missed ticks are dropped, C never holds more than one.
          mpg::sleep_for(10 * period);
          EXPECT_LE(tk.C.len(), 1u);
          tk.C.try_recv();

          tk.stop();
          mpg::sleep_for(period / 2);
          tk.C.try_recv();  // a tick sent just before stop may be buffered
          mpg::sleep_for(4 * period);
          EXPECT_EQ(tk.C.try_recv(), std::nullopt) << "tick after stop";

          // Reset restarts it with a new period.
          auto t2 = Clock::now();
          tk.reset(2 * period);
          auto v = tk.C.recv();
          ASSERT_TRUE(v.has_value());
          EXPECT_GE(*v - t2, 2 * period);
          v = tk.C.recv();
          ASSERT_TRUE(v.has_value());
          EXPECT_GE(*v - t2, 4 * period);
          tk.stop();
        },
        mpg::Config{.procs = procs});
  }
}

// Invariant: a Ticker's period must be positive.
TEST(Ticker, NonPositivePeriodThrows) {
  mpg::run([] {
    EXPECT_THROW(mpg::Ticker(0ms), std::invalid_argument);
    mpg::Ticker tk(1h);
    EXPECT_THROW(tk.reset(-1ms), std::invalid_argument);
  });
}

// Invariant: Ticker::stop always stops the ticker, even when it races the runtime re-arming it.
// (Regression: run_timers moved a ticker from armed to fired and then, in a second CAS, to
// re-armed; a stop() between the two found it unarmed and was lost, about 1 in 1,500 here. Now
// one CAS goes from armed straight to the next arm.) It hunts a race: ~2-5 s.
TEST(Ticker, StopRacingRearmIsNeverLost) {
  const int iters = 5000;
  int lost = 0;
  mpg::run(
      [&] {
        for (int i = 0; i < iters && lost == 0; i++) {
          std::atomic<bool> stop{false};
          mpg::WaitGroup wg;
          mpg::Chan<mpg::Ticker*> handoff(1);
          wg.add(1);
          // A 1 ns ticker on this goroutine's P, which keeps scheduling: run_timers fires and
          // re-arms it over and over there while main stops it from the other P.
          mpg::go([&] {
            handoff.send(new mpg::Ticker(1ns));
            while (!stop.load()) mpg::yield();
            wg.done();
          });
          mpg::Ticker* tk = *handoff.recv();
          for (int k = 0; k < 50; k++) mpg::yield();
          tk->stop();
          stop = true;
          wg.wait();
          tk->C.try_recv();  // a tick sent before stop may be buffered
          mpg::sleep_for(100us);
          if (tk->C.try_recv()) {  // one may have been in flight on another M
            mpg::sleep_for(1ms);
            tk->C.try_recv();
            mpg::sleep_for(1ms);
            if (tk->C.try_recv()) lost++;  // still ticking 2 ms after stop
          }
          delete tk;
        }
      },
      mpg::Config{.procs = 2});
  EXPECT_EQ(lost, 0);
}

// ---------------------------------------------------------------------------------------------
// after / after_func.

// Invariant: after(d) delivers one time value, no earlier than d, on a fresh channel; it
// works as a select timeout.
TEST(After, DeliversOnceAfterTheDuration) {
  for (int procs : {1, 2}) {
    mpg::run(
        [] {
          auto t0 = Clock::now();
          auto c = mpg::after(10ms);
          auto v = c.recv();
          ASSERT_TRUE(v.has_value());
          EXPECT_GE(*v - t0, 10ms);
          EXPECT_LT(Clock::now() - t0, 10ms + slack());
          mpg::sleep_for(15ms);
          EXPECT_EQ(c.try_recv(), std::nullopt);

          mpg::Chan<int> never;
          t0 = Clock::now();
          int idx = mpg::select(mpg::on_recv(never, [](std::optional<int>) {}),
                                mpg::on_recv(mpg::after(8ms), [](std::optional<Clock::time_point>) {}));
          EXPECT_EQ(idx, 1);
          EXPECT_GE(Clock::now() - t0, 8ms);
          // An after() nobody reads is freed at the end of the run (LeakSanitizer checks).
          (void)mpg::after(1h);
        },
        mpg::Config{.procs = procs});
  }
}

// Invariant: after_func runs f once, in a goroutine of its own, no earlier than d; the Timer it
// returns has a nil C, and stop() before d prevents f from ever running.
TEST(AfterFunc, RunsInGoroutineAndStopPreventsIt) {
  for (int procs : {1, 2}) {
    std::atomic<int> runs{0}, stopped_runs{0};
    std::uint64_t f_goid = 0, main_goid = 0;
    bool f_in_goroutine = false;
    Clock::duration delay{};
    mpg::run(
        [&] {
          main_goid = mpg::goid();
          mpg::Chan<int> done(1);
          auto t0 = Clock::now();
          mpg::Timer t = mpg::after_func(10ms, [&] {
            delay = Clock::now() - t0;
            f_goid = mpg::goid();
            f_in_goroutine = mpg::in_goroutine();
            runs++;
            done.send(1);
          });
          EXPECT_TRUE(t.C.nil());
          EXPECT_EQ(done.recv(), std::optional<int>(1));
          EXPECT_FALSE(t.stop());  // it has fired

          mpg::Timer s = mpg::after_func(10ms, [&] { stopped_runs++; });
          EXPECT_TRUE(s.stop());
          mpg::sleep_for(30ms);

          // reset after stop re-arms it.
          mpg::Chan<int> again(1);
          mpg::Timer r = mpg::after_func(1h, [&again] { again.send(2); });
          EXPECT_TRUE(r.stop());
          EXPECT_FALSE(r.reset(2ms));
          EXPECT_EQ(again.recv(), std::optional<int>(2));
          EXPECT_TRUE(wait_alone());
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(runs.load(), 1) << "procs=" << procs;
    EXPECT_EQ(stopped_runs.load(), 0) << "procs=" << procs;
    EXPECT_TRUE(f_in_goroutine);
    EXPECT_NE(f_goid, 0u);
    EXPECT_NE(f_goid, main_goid);
    EXPECT_GE(delay, 10ms);
  }
}

// ---------------------------------------------------------------------------------------------
// Timers under load.

// Invariant: a 20 ms timer (and a 20 ms sleep) fires within ~20-200 ms while goroutine pairs
// ping-pong an unbuffered channel as fast as they can, keeping every P busy.
TEST(TimerUnderLoad, FiresWhileGoroutinesFloodAChannel) {
  for (int procs : {1, 2}) {
    Clock::duration timer_dt{}, sleep_dt{};
    long exchanges = 0;
    mpg::run(
        [&] {
          std::atomic<bool> stop{false};
          std::atomic<long> count{0};
          mpg::WaitGroup wg;
          const int pairs = 4;
          std::vector<mpg::Chan<int>> ping, pong;
          for (int p = 0; p < pairs; p++) ping.emplace_back(), pong.emplace_back();
          for (int p = 0; p < pairs; p++) {
            wg.add(2);
            mpg::go([&, p] {
              long k = 0;
              while (!stop.load(std::memory_order_relaxed)) {
                ping[std::size_t(p)].send(1);
                pong[std::size_t(p)].recv();
                k++;
              }
              ping[std::size_t(p)].close();
              count += k;
              wg.done();
            });
            mpg::go([&, p] {
              while (ping[std::size_t(p)].recv()) pong[std::size_t(p)].send(1);
              wg.done();
            });
          }
          mpg::sleep_for(1ms);  // let the flood start
          auto t0 = Clock::now();
          mpg::Timer t(20ms);
          t.C.recv();
          timer_dt = Clock::now() - t0;
          t0 = Clock::now();
          mpg::sleep_for(20ms);
          sleep_dt = Clock::now() - t0;
          stop = true;
          wg.wait();
          exchanges = count.load();
        },
        mpg::Config{.procs = procs});
    EXPECT_GE(timer_dt, 20ms) << "procs=" << procs;
    EXPECT_LT(timer_dt, 200ms) << "procs=" << procs;
    EXPECT_GE(sleep_dt, 20ms) << "procs=" << procs;
    EXPECT_LT(sleep_dt, 200ms) << "procs=" << procs;
    EXPECT_GT(exchanges, 100) << "procs=" << procs;  // the flood really ran
  }
}

// OrderCounts: what one run of many timers and many sleepers saw (see the test below).
struct OrderCounts {
  int early = 0, inversions = 0, missing = 0;
};

// inversions_in: sorted by when they fired, how many have a deadline clearly (by more than
// slack) earlier than one that fired before them.
template <class V, class Fired>
int inversions_in(V& v, Fired fired, Clock::duration slack) {
  std::sort(v.begin(), v.end(), [&](const auto& a, const auto& b) { return fired(a) < fired(b); });
  int inversions = 0;
  Clock::time_point max_deadline{};
  for (auto& x : v) {
    if (x.deadline + slack < max_deadline) inversions++;
    max_deadline = std::max(max_deadline, x.deadline);
  }
  return inversions;
}

// timers_and_sleepers: n Timers, then n sleeping goroutines, with random durations of 1-51 ms,
// at `procs`; counts the early, missing and out-of-order fires.
OrderCounts timers_and_sleepers(int procs, int n, Clock::duration slack, std::uint64_t seed) {
  OrderCounts c;
  mpg::run(
      [&] {
        Rng r{seed};
        struct T {
          Clock::time_point deadline;
          Clock::time_point fired;
          std::unique_ptr<mpg::Timer> timer;
        };
        std::vector<T> ts(static_cast<std::size_t>(n));
        for (auto& t : ts) {
          auto d = std::chrono::microseconds(1000 + r.below(50000));
          t.deadline = Clock::now() + d;
          t.timer = std::make_unique<mpg::Timer>(d);
        }
        // Collect each timer's value in its own goroutine.
        mpg::WaitGroup wg;
        for (auto& t : ts) {
          wg.add(1);
          mpg::go([&wg, &t] {
            auto v = t.timer->C.recv();
            if (v) t.fired = *v;
            wg.done();
          });
        }
        wg.wait();
        for (auto& t : ts) {
          if (t.fired == Clock::time_point{}) c.missing++;
          else if (t.fired < t.deadline) c.early++;
        }
        // Fired in deadline order: no timer fired before one whose deadline is clearly earlier.
        c.inversions += inversions_in(ts, [](const T& t) { return t.fired; }, slack);

        // Sleepers: the same with goroutines sleeping random durations.
        struct S {
          Clock::time_point deadline, woke;
        };
        std::vector<S> ss(static_cast<std::size_t>(n));
        for (auto& s : ss) {
          auto d = std::chrono::microseconds(1000 + r.below(50000));
          s.deadline = Clock::now() + d;
          wg.add(1);
          mpg::go([&wg, &s] {
            mpg::sleep_until(s.deadline);
            s.woke = Clock::now();
            wg.done();
          });
        }
        wg.wait();
        for (auto& s : ss)
          if (s.woke < s.deadline) c.early++;
        c.inversions += inversions_in(ss, [](const S& s) { return s.woke; }, slack);
      },
      mpg::Config{.procs = procs});
  return c;
}

// Invariant: many timers with random durations fire in the order of their deadlines (within
// scheduling slack), each no earlier than its deadline; likewise many sleeping goroutines.
// The slack is 5 ms. (Regression: at procs 2 and 4 on 2 CPUs, bursts of due timers ran 3-6 ms
// late when the P holding them had just been handed to an M the OS had not scheduled yet; the
// woken timer poller now runs every P's due timers itself.)
// Early and missing fires are never excusable; an inversion can be the machine's doing. When
// the OS deschedules an M for longer than the slack (ctest -j2, a CPU hog), its timer check
// comes late: the sleepers it then wakes together run in runnext order (the last woken first,
// as in Go), and another P may fire its own timers meanwhile. A broken order shows on every
// attempt, load does not: an attempt with inversions is repeated, up to three in all (one
// failure in 50 runs beside a two-core CPU hog before this).
TEST(TimerUnderLoad, ManyTimersFireInDeadlineOrder) {
  const int n = int(max_live(400));
  const auto order_slack = under_sanitizer() ? 50ms : 5ms;
  constexpr int kAttempts = 3;
  for (int procs : {1, 2, 4}) {
    for (int attempt = 1;; ++attempt) {
      OrderCounts c = timers_and_sleepers(procs, n, order_slack,
                                          std::uint64_t(procs) * 31 + 7 + std::uint64_t(attempt) * 1009);
      EXPECT_EQ(c.missing, 0) << "procs=" << procs << ", attempt " << attempt;
      EXPECT_EQ(c.early, 0) << "procs=" << procs << ", attempt " << attempt;
      if (c.inversions == 0 || attempt == kAttempts) {
        EXPECT_EQ(c.inversions, 0) << "procs=" << procs << ", attempt " << attempt;
        break;
      }
      // Said, so that a rare order bug leaves a trace.
      std::fprintf(stderr, "ManyTimersFireInDeadlineOrder: %d inversions at procs=%d, attempt %d: again\n",
                   c.inversions, procs, attempt);
    }
  }
}

}  // namespace
