// concurrency_limiter_test.cpp: never more than N in flight, under 8 threads hammering, with
// exact admitted + refused counts; 503 with Retry-After; the slot comes back on a throw.
#include "mpg/kit/concurrency_limiter.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kit/test_support.hpp"
#include "mpg/kit/registry.hpp"

namespace mpg::kit {
namespace {

TEST(ConcurrencyLimiter, RefusesWith503AndRetryAfterWhenFull) {
  ConcurrencyLimiter limiter({.limit = 2, .retry_after = std::chrono::seconds(3)});
  std::vector<http::Response> inner;
  http::Handler h;
  // The handler re-enters the limited handler while holding its slot, to fill the limit.
  int depth = 0;
  h = limiter.middleware()([&](const http::Request& req, http::Response& res) {
    if (++depth <= 2) inner.push_back(test::call(h));
    res.text("ok");
  });
  EXPECT_EQ(test::call(h).status, 200);
  ASSERT_EQ(inner.size(), 2u);
  // The innermost call finishes first: the third request, refused; then the second.
  EXPECT_EQ(inner[0].status, 503);
  EXPECT_EQ(inner[0].header("Retry-After"), "3");
  EXPECT_EQ(inner[0].body, "too many requests in flight\n");
  EXPECT_EQ(inner[1].status, 200);
  EXPECT_EQ(limiter.in_flight(), 0u);
  EXPECT_EQ(limiter.refused(), 1u);
}

TEST(ConcurrencyLimiter, ReleasesTheSlotWhenTheHandlerThrows) {
  ConcurrencyLimiter limiter({.limit = 1});
  http::Handler h = limiter.middleware()(
      [](const http::Request&, http::Response&) { throw std::runtime_error("boom"); });
  EXPECT_THROW(test::call(h), std::runtime_error);
  EXPECT_EQ(limiter.in_flight(), 0u);
  EXPECT_EQ(test::serve_get(h).status, 500);  // the session answers the throw
  EXPECT_EQ(limiter.in_flight(), 0u);
}

TEST(ConcurrencyLimiter, EightThreadsNeverExceedTheLimitAndCountsAreExact) {
  constexpr std::size_t kLimit = 3;
  constexpr int kThreads = 8, kPer = 20'000;
  ConcurrencyLimiter limiter({.limit = kLimit});
  std::atomic<int> inside{0}, peak{0}, served{0};
  http::Handler h = limiter.middleware()([&](const http::Request&, http::Response& res) {
    int now = ++inside;
    for (int p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {
    }
    EXPECT_LE(now, int(kLimit));
    std::this_thread::yield();  // hold the slot a while, so threads collide
    --inside;
    ++served;
    res.text("ok");
  });
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++)
    threads.emplace_back([&] {
      for (int i = 0; i < kPer; i++) (test::call(h).status == 200 ? ok : refused)++;
    });
  for (std::thread& t : threads) t.join();
  EXPECT_LE(peak.load(), int(kLimit));
  EXPECT_GE(peak.load(), 2);  // the test did make threads overlap
  EXPECT_EQ(ok + refused, kThreads * kPer);
  EXPECT_EQ(ok.load(), served.load());
  EXPECT_EQ(std::uint64_t(refused.load()), limiter.refused());
  EXPECT_GT(refused.load(), 0);
  EXPECT_EQ(limiter.in_flight(), 0u);
}

TEST(ConcurrencyLimiter, PermitsMoveAndRelease) {
  ConcurrencyLimiter limiter({.limit = 1});
  ConcurrencyLimiter::Permit a = limiter.try_acquire();
  ASSERT_TRUE(a);
  EXPECT_FALSE(limiter.try_acquire());
  ConcurrencyLimiter::Permit b = std::move(a);
  EXPECT_FALSE(a);
  EXPECT_EQ(limiter.in_flight(), 1u);
  b.reset();
  EXPECT_EQ(limiter.in_flight(), 0u);
  EXPECT_TRUE(limiter.try_acquire());
}

TEST(Slots, HeldCountIncludesTheNewSlot) {
  Slots s(2);
  std::size_t held = 0;
  EXPECT_TRUE(s.try_acquire(&held));
  EXPECT_EQ(held, 1u);
  EXPECT_TRUE(s.try_acquire(&held));
  EXPECT_EQ(held, 2u);
  EXPECT_FALSE(s.try_acquire(&held));
  EXPECT_EQ(s.release(), 1u);
}

TEST(ConcurrencyLimiter, Metrics) {
  ConcurrencyLimiter limiter({.limit = 1});
  Registry r;
  limiter.register_metrics(r);
  ConcurrencyLimiter::Permit p = limiter.try_acquire();
  limiter.try_acquire();
  EXPECT_EQ(r.render(),
            "# HELP mpg_concurrency_in_flight Requests in flight under the concurrency limiter.\n"
            "# TYPE mpg_concurrency_in_flight gauge\n"
            "mpg_concurrency_in_flight 1\n"
            "# HELP mpg_concurrency_limit The concurrency limiter's limit.\n"
            "# TYPE mpg_concurrency_limit gauge\n"
            "mpg_concurrency_limit 1\n"
            "# HELP mpg_concurrency_refused_total Requests refused with 503 at the limit.\n"
            "# TYPE mpg_concurrency_refused_total counter\n"
            "mpg_concurrency_refused_total 1\n");
}

}  // namespace
}  // namespace mpg::kit
