// drain_test.cpp: the shutdown sequence (serve, serve-and-close, refuse), wait() woken by the
// last leave() and bounded by its deadline, no request served after the drain finished (8
// threads racing it), the middleware's Connection: close and 503, and wait() from a goroutine
// through mpg::blocking beside goroutines that finish their requests.
#include "mpg/kit/drain.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "kit/test_support.hpp"
#include "mpg/mpg.hpp"

namespace mpg::kit {
namespace {

using std::chrono::milliseconds;

TEST(Drain, ServeThenServeAndCloseThenRefuse) {
  Drain d;
  EXPECT_EQ(d.enter(), Admit::kServe);
  EXPECT_TRUE(d.begin());
  EXPECT_FALSE(d.begin());  // only the first call starts it
  EXPECT_TRUE(d.draining());
  EXPECT_EQ(d.enter(), Admit::kServeAndClose);
  EXPECT_EQ(d.in_flight(), 2u);
  EXPECT_FALSE(d.try_finish());
  d.leave();
  EXPECT_FALSE(d.try_finish());
  d.leave();
  EXPECT_TRUE(d.try_finish());
  EXPECT_TRUE(d.finished());
  EXPECT_TRUE(d.try_finish());  // stays finished
  EXPECT_EQ(d.enter(), Admit::kRefuse);
  d.leave();
  EXPECT_EQ(d.in_flight(), 0u);
}

TEST(Drain, WaitIsWokenByTheLastLeave) {
  Drain d;
  d.enter();
  d.enter();
  std::thread worker([&] {
    std::this_thread::sleep_for(milliseconds(20));
    d.leave();
    std::this_thread::sleep_for(milliseconds(20));
    d.leave();
  });
  Clock::time_point start = Clock::now();
  EXPECT_TRUE(d.wait(start + std::chrono::seconds(10)));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));  // woken, not timed out
  worker.join();
  EXPECT_EQ(d.enter(), Admit::kRefuse);
  d.leave();
}

TEST(Drain, WaitGivesUpAtTheDeadline) {
  Drain d;
  d.enter();  // a request that never ends
  Clock::time_point start = Clock::now();
  EXPECT_FALSE(d.wait(start + milliseconds(50)));
  EXPECT_GE(Clock::now() - start, milliseconds(50));
  EXPECT_FALSE(d.finished());
  EXPECT_EQ(d.enter(), Admit::kServeAndClose);  // not finished: still served, with close
  d.leave();
  d.leave();
  EXPECT_TRUE(d.wait(Clock::now()));
}

TEST(Drain, NoRequestIsServedAfterTheDrainFinished) {
  // 8 threads run requests back to back while the main thread drains. Once draining, each
  // thread makes 200 more attempts with short pauses (its connections close after their
  // response, new ones arrive more slowly), so the count touches zero while requests still
  // race the finish. Inside every served request the drain cannot be finished: finishing needs
  // zero in flight. After it, nothing is served.
  Drain d;
  std::atomic<std::uint64_t> served{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; i++)
    threads.emplace_back([&] {
      for (int after = 0; after < 200;) {
        Admit admit;
        {
          Drain::Guard g(d);
          admit = g.admit();
          if (admit == Admit::kRefuse) {
            refused++;
          } else {
            EXPECT_FALSE(d.finished());
            served++;
          }
        }
        if (admit != Admit::kServe) {
          after++;
          std::this_thread::sleep_for(std::chrono::microseconds(50));  // outside the request
        }
      }
    });
  std::this_thread::sleep_for(milliseconds(20));
  bool finished = d.wait(Clock::now() + std::chrono::seconds(30));
  std::uint64_t served_at_finish = served.load();
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(finished);
  EXPECT_EQ(served.load(), served_at_finish);  // nothing served after
  EXPECT_GT(refused.load(), 0u);
  EXPECT_EQ(d.in_flight(), 0u);
}

TEST(Drain, MiddlewareClosesWhileDrainingAndRefusesWhenFinished) {
  Drain d;
  http::Handler h = d.middleware()(test::ok());
  http::test::Parsed p = test::serve_get(h);
  EXPECT_EQ(p.status, 200);
  EXPECT_FALSE(p.closes());
  d.begin();
  p = test::serve_get(h);
  EXPECT_EQ(p.status, 200);
  EXPECT_TRUE(p.closes());
  EXPECT_TRUE(d.try_finish());
  p = test::serve_get(h);
  EXPECT_EQ(p.status, 503);
  EXPECT_TRUE(p.closes());
  EXPECT_EQ(p.body, "shutting down\n");
}

TEST(Drain, MiddlewareClosesARequestThatWasInFlightWhenTheDrainBegan) {
  Drain d;
  http::Handler h = d.middleware()([&](const http::Request&, http::Response& res) {
    d.begin();  // SIGTERM arrives while this request runs
    res.text("ok");
  });
  http::test::Parsed p = test::serve_get(h);
  EXPECT_EQ(p.status, 200);
  EXPECT_TRUE(p.closes());
}

TEST(Drain, GoroutineWaitsThroughBlockingWhileOthersFinish) {
  Drain d;
  int result = mpg::run(
      [&] {
        for (int i = 0; i < 50; i++) {
          d.enter();
          mpg::go([&d, i] {
            mpg::sleep_for(milliseconds(1 + i % 7));
            d.leave();
          });
        }
        bool done = mpg::blocking([&] { return d.wait(Clock::now() + std::chrono::seconds(30)); });
        return done ? 0 : 1;
      },
      [] {
        mpg::Config c;
        c.procs = 2;
        return c;
      }());
  EXPECT_EQ(result, 0);
  EXPECT_TRUE(d.finished());
}

}  // namespace
}  // namespace mpg::kit
