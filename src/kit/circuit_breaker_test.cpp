// circuit_breaker_test.cpp: every edge of the state machine under an injected clock, the
// half-open trial limit (also under 8 threads), stale outcomes, the fallback, the observer and
// the metrics.
#include "mpg/kit/circuit_breaker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "kit/test_support.hpp"
#include "mpg/kit/registry.hpp"

namespace mpg::kit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using S = BreakerState;

// Fixture: a breaker on a manual clock that logs its transitions.
struct Breaker {
  ManualClock clock;
  std::vector<std::pair<S, S>> log;
  CircuitBreaker b;

  explicit Breaker(BreakerConfig c) : b(with_observer(std::move(c))) {}
  BreakerConfig with_observer(BreakerConfig c) {
    c.time = clock.source();
    c.on_state_change = [this](S from, S to) { log.emplace_back(from, to); };
    return c;
  }
  void succeed() {
    CircuitBreaker::Call c = b.try_acquire();
    ASSERT_TRUE(c);
    c.success();
  }
  void fail() {
    CircuitBreaker::Call c = b.try_acquire();
    ASSERT_TRUE(c);
    c.failure();
  }
};

BreakerConfig consecutive(std::uint32_t n) {
  return {.consecutive_failures = n, .failure_ratio = 0, .open_timeout = seconds(5)};
}

TEST(CircuitBreaker, ClosedToOpenOnConsecutiveFailures) {
  Breaker t(consecutive(3));
  t.fail();
  t.fail();
  t.succeed();  // a success resets the run
  t.fail();
  t.fail();
  EXPECT_EQ(t.b.state(), S::kClosed);
  t.fail();
  EXPECT_EQ(t.b.state(), S::kOpen);
  EXPECT_EQ(t.log, (std::vector<std::pair<S, S>>{{S::kClosed, S::kOpen}}));
}

TEST(CircuitBreaker, ClosedToOpenOnFailureRatioOnlyWithMinCalls) {
  Breaker t({.consecutive_failures = 0, .failure_ratio = 0.5, .min_calls = 10});
  for (int i = 0; i < 4; i++) {
    t.fail();  // 4 of 4 fail, but too few calls to judge
    EXPECT_EQ(t.b.state(), S::kClosed);
  }
  for (int i = 0; i < 5; i++) t.succeed();
  EXPECT_EQ(t.b.state(), S::kClosed);  // 4 / 9
  t.fail();                            // 5 / 10: the ratio is reached
  EXPECT_EQ(t.b.state(), S::kOpen);
}

TEST(CircuitBreaker, FailuresAgeOutOfTheRollingWindow) {
  Breaker t({.consecutive_failures = 0,
             .failure_ratio = 0.5,
             .min_calls = 4,
             .window = seconds(10),
             .window_buckets = 10});
  t.fail();
  t.fail();
  t.fail();  // 3 / 3, below min_calls
  t.clock.advance(seconds(11));
  t.fail();  // the old three have left the window: 1 / 1
  t.succeed();
  t.succeed();
  t.succeed();  // 1 / 4
  EXPECT_EQ(t.b.state(), S::kClosed);
  t.clock.advance(seconds(5));  // half the window: the last four still count
  t.fail();                     // 2 / 5
  EXPECT_EQ(t.b.state(), S::kClosed);
  t.fail();  // 3 / 6
  EXPECT_EQ(t.b.state(), S::kOpen);
}

TEST(CircuitBreaker, OpenRefusesUntilTimeoutThenHalfOpen) {
  Breaker t(consecutive(1));
  t.fail();
  ASSERT_EQ(t.b.state(), S::kOpen);
  EXPECT_FALSE(t.b.try_acquire());
  EXPECT_EQ(t.b.rejected(), 1u);
  EXPECT_EQ(t.b.open_remaining(), seconds(5));
  t.clock.advance(milliseconds(4999));
  EXPECT_FALSE(t.b.try_acquire());
  EXPECT_EQ(t.b.open_remaining(), milliseconds(1));
  t.clock.advance(milliseconds(1));
  EXPECT_EQ(t.b.state(), S::kHalfOpen);  // a query moves it, too
  EXPECT_EQ(t.b.open_remaining(), Nanos(0));
  EXPECT_EQ(t.log,
            (std::vector<std::pair<S, S>>{{S::kClosed, S::kOpen}, {S::kOpen, S::kHalfOpen}}));
}

TEST(CircuitBreaker, HalfOpenAdmitsOnlyItsTrialsThenCloses) {
  BreakerConfig c = consecutive(1);
  c.half_open_calls = 2;
  Breaker t(c);
  t.fail();
  t.clock.advance(seconds(5));
  CircuitBreaker::Call a = t.b.try_acquire();  // the open -> half-open move happens here
  CircuitBreaker::Call b = t.b.try_acquire();
  EXPECT_TRUE(a);
  EXPECT_TRUE(b);
  EXPECT_FALSE(t.b.try_acquire());  // the trial limit
  EXPECT_EQ(t.b.state(), S::kHalfOpen);
  a.success();
  EXPECT_EQ(t.b.state(), S::kHalfOpen);  // one success of two
  EXPECT_FALSE(t.b.try_acquire());       // a finished trial does not free a trial slot
  b.success();
  EXPECT_EQ(t.b.state(), S::kClosed);
  EXPECT_EQ(t.log,
            (std::vector<std::pair<S, S>>{
                {S::kClosed, S::kOpen}, {S::kOpen, S::kHalfOpen}, {S::kHalfOpen, S::kClosed}}));
  t.fail();  // closed again, with fresh counts: one failure opens it
  EXPECT_EQ(t.b.state(), S::kOpen);
}

TEST(CircuitBreaker, HalfOpenTrialFailureReopensAndRestartsTheTimeout) {
  Breaker t(consecutive(1));
  t.fail();
  t.clock.advance(seconds(7));
  t.fail();  // the trial
  EXPECT_EQ(t.b.state(), S::kOpen);
  EXPECT_EQ(t.b.open_remaining(), seconds(5));
  t.clock.advance(seconds(5));
  EXPECT_EQ(t.b.state(), S::kHalfOpen);
  EXPECT_EQ(t.b.transitions(S::kOpen), 2u);
  EXPECT_EQ(t.b.transitions(S::kHalfOpen), 2u);
  EXPECT_EQ(t.b.transitions(S::kClosed), 0u);
  EXPECT_EQ(t.log, (std::vector<std::pair<S, S>>{{S::kClosed, S::kOpen},
                                                 {S::kOpen, S::kHalfOpen},
                                                 {S::kHalfOpen, S::kOpen},
                                                 {S::kOpen, S::kHalfOpen}}));
}

TEST(CircuitBreaker, OutcomesFromAnEarlierStateAreIgnored) {
  Breaker t(consecutive(2));
  CircuitBreaker::Call slow = t.b.try_acquire();  // admitted while closed
  t.fail();
  t.fail();
  ASSERT_EQ(t.b.state(), S::kOpen);
  slow.success();  // a late success from the closed era does not count
  t.clock.advance(seconds(5));
  CircuitBreaker::Call trial = t.b.try_acquire();
  ASSERT_TRUE(trial);
  CircuitBreaker::Call slow2 = std::move(slow);  // already reported: nothing
  EXPECT_EQ(t.b.state(), S::kHalfOpen);
  trial.success();
  EXPECT_EQ(t.b.state(), S::kClosed);
}

TEST(CircuitBreaker, AnUnreportedCallIsAFailure) {
  Breaker t(consecutive(1));
  { CircuitBreaker::Call c = t.b.try_acquire(); }
  EXPECT_EQ(t.b.state(), S::kOpen);
}

TEST(CircuitBreaker, CallReturnsTheResultOrTheFallback) {
  Breaker t(consecutive(2));
  EXPECT_EQ(t.b.call([] { return 1; }, [] { return -1; }), 1);
  EXPECT_EQ(t.b.call([]() -> int { throw std::runtime_error("down"); }, [] { return -1; }), -1);
  EXPECT_EQ(t.b.call([]() -> int { throw std::runtime_error("down"); }, [] { return -1; }), -1);
  ASSERT_EQ(t.b.state(), S::kOpen);
  bool ran = false;
  EXPECT_EQ(t.b.call(
                [&] {
                  ran = true;
                  return 1;
                },
                [] { return -1; }),
            -1);
  EXPECT_FALSE(ran);  // open: the downstream is not called
  int fallbacks = 0;
  t.b.call([] {}, [&] { fallbacks++; });  // void calls too
  EXPECT_EQ(fallbacks, 1);
}

TEST(CircuitBreaker, MiddlewareCounts5xxAndAnswersWithTheFallback) {
  Breaker t(consecutive(2));
  int status = 502;
  http::Handler downstream = [&](const http::Request&, http::Response& res) {
    res.text("down", status);
  };
  http::Handler h = t.b.middleware()(downstream);
  EXPECT_EQ(test::call(h).status, 502);
  EXPECT_EQ(test::call(h).status, 502);
  ASSERT_EQ(t.b.state(), S::kOpen);
  t.clock.advance(milliseconds(1500));
  http::Response r = test::call(h);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.header("Retry-After"), "4");  // 3.5 s left, rounded up
  EXPECT_EQ(r.body, "service unavailable (circuit open)\n");
  t.clock.advance(seconds(4));
  status = 200;
  EXPECT_EQ(test::call(h).status, 200);  // the trial succeeds
  EXPECT_EQ(t.b.state(), S::kClosed);
}

TEST(CircuitBreaker, MiddlewareCustomFallbackAndFailureRuleAndThrows) {
  Breaker t(consecutive(2));
  http::Handler h = t.b.middleware(
      {.fallback = [](const http::Request&, http::Response& res) { res.text("cached answer"); },
       .is_failure = [](const http::Response& res) { return res.status == 404; }})(
      [](const http::Request& req, http::Response& res) {
        if (req.method == "PUT") throw std::runtime_error("boom");
        res.text("nope", 404);
      });
  EXPECT_THROW(test::call(h, "", "PUT"), std::runtime_error);  // a failure
  EXPECT_EQ(test::call(h).status, 404);                        // a failure by the rule
  ASSERT_EQ(t.b.state(), S::kOpen);
  http::Response r = test::call(h);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "cached answer");
}

TEST(CircuitBreaker, EightThreadsInHalfOpenGetExactlyTheTrials) {
  BreakerConfig c = consecutive(1);
  c.half_open_calls = 3;
  Breaker t(c);
  t.fail();
  t.clock.advance(seconds(5));
  std::atomic<int> admitted{0};
  std::vector<CircuitBreaker::Call> held[8];
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; i++)
    threads.emplace_back([&, i] {
      for (int k = 0; k < 100; k++) {
        CircuitBreaker::Call call = t.b.try_acquire();
        if (call) {
          admitted++;
          held[i].push_back(std::move(call));  // keep the trial open: no report yet
        }
      }
    });
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(admitted.load(), 3);
  EXPECT_EQ(t.b.rejected(), 8u * 100 - 3);
  for (auto& calls : held)
    for (CircuitBreaker::Call& call : calls) call.success();
  EXPECT_EQ(t.b.state(), S::kClosed);
}

TEST(CircuitBreaker, ConcurrentCallsWhileFlappingTakeOnlyLegalEdges) {
  // 8 threads call a downstream that fails in runs while the clock moves, so the breaker goes
  // round its cycle many times with calls racing every transition. Every edge the observer
  // sees is legal, and it sees each transition exactly once.
  ManualClock clock;
  std::atomic<int> edges[3][3] = {};
  CircuitBreaker b({.consecutive_failures = 3,
                    .failure_ratio = 0,
                    .open_timeout = milliseconds(1),
                    .half_open_calls = 2,
                    .time = clock.source(),
                    .on_state_change = [&](S from, S to) { edges[int(from)][int(to)]++; }});
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; i++)
    threads.emplace_back([&, i] {
      for (int k = 0; k < 20'000; k++) {
        clock.advance(std::chrono::microseconds(1));  // 160 ms in all: many open timeouts
        b.call(
            [&] {
              if ((k / 64 + i) % 2) throw std::runtime_error("x");
            },
            [] {});
      }
    });
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(edges[int(S::kClosed)][int(S::kHalfOpen)], 0);
  EXPECT_EQ(edges[int(S::kOpen)][int(S::kClosed)], 0);
  for (int x = 0; x < 3; x++) EXPECT_EQ(edges[x][x], 0);
  EXPECT_GT(edges[int(S::kClosed)][int(S::kOpen)], 0);
  EXPECT_GT(edges[int(S::kOpen)][int(S::kHalfOpen)], 0);
  for (S to : {S::kClosed, S::kOpen, S::kHalfOpen}) {
    int seen = 0;
    for (int from = 0; from < 3; from++) seen += edges[from][int(to)];
    EXPECT_EQ(std::uint64_t(seen), b.transitions(to)) << state_name(to);
  }
}

TEST(CircuitBreaker, Metrics) {
  Breaker t(consecutive(1));
  Registry r;
  t.b.register_metrics(r, "model");
  t.fail();
  t.b.try_acquire();
  EXPECT_EQ(r.render(),
            "# HELP mpg_breaker_state Circuit breaker state: 0 closed, 1 open, 2 half-open.\n"
            "# TYPE mpg_breaker_state gauge\n"
            "mpg_breaker_state{breaker=\"model\"} 1\n"
            "# HELP mpg_breaker_transitions_total Circuit breaker transitions, by the state "
            "entered.\n"
            "# TYPE mpg_breaker_transitions_total counter\n"
            "mpg_breaker_transitions_total{breaker=\"model\",to=\"closed\"} 0\n"
            "mpg_breaker_transitions_total{breaker=\"model\",to=\"half_open\"} 0\n"
            "mpg_breaker_transitions_total{breaker=\"model\",to=\"open\"} 1\n"
            "# HELP mpg_breaker_rejected_total Calls the circuit breaker refused (answered by the "
            "fallback).\n"
            "# TYPE mpg_breaker_rejected_total counter\n"
            "mpg_breaker_rejected_total{breaker=\"model\"} 1\n");
}

TEST(CircuitBreaker, InvalidConfigThrows) {
  EXPECT_THROW(CircuitBreaker({.window_buckets = 0}), std::invalid_argument);
  EXPECT_THROW(CircuitBreaker({.half_open_calls = 0}), std::invalid_argument);
}

}  // namespace
}  // namespace mpg::kit
