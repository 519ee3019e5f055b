// rate_limiter_test.cpp: 429 with Retry-After, per-client isolation, the table's bound and its
// eviction order, the server bucket, and the limiter through a real ServerSession.
#include "mpg/kit/rate_limiter.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "kit/test_support.hpp"
#include "mpg/kit/registry.hpp"

namespace mpg::kit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string ip(int i) {
  return "10." + std::to_string(i >> 16 & 255) + "." + std::to_string(i >> 8 & 255) + "." +
         std::to_string(i & 255);
}

TEST(RateLimiter, RefusesWith429AndRetryAfterRoundedUp) {
  ManualClock clock;
  RateLimiter limiter({.per_client = {.per_second = 0.4, .burst = 2}, .time = clock.source()});
  http::Handler h = limiter.middleware()(test::ok());
  EXPECT_EQ(test::call(h).status, 200);
  EXPECT_EQ(test::call(h).status, 200);
  http::Response r = test::call(h);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("Retry-After"), "3");  // a token every 2.5 s: 3 whole seconds
  EXPECT_EQ(r.header("Content-Type"), "text/plain");
  EXPECT_EQ(r.body, "too many requests\n");
  clock.advance(milliseconds(1500));
  EXPECT_EQ(test::call(h).header("Retry-After"), "1");  // 1 s left
  clock.advance(seconds(1));
  EXPECT_EQ(test::call(h).status, 200);
  EXPECT_EQ(limiter.refused_by_client(), 2u);
}

TEST(RateLimiter, ClientsAreIsolated) {
  ManualClock clock;
  RateLimiter limiter({.per_client = {.per_second = 1, .burst = 3}, .time = clock.source()});
  http::Handler h = limiter.middleware()(test::ok());
  for (int i = 0; i < 3; i++) EXPECT_EQ(test::call(h, "192.0.2.1").status, 200);
  EXPECT_EQ(test::call(h, "192.0.2.1").status, 429);
  // Another client, IPv4 or IPv6, still has its whole burst.
  for (int i = 0; i < 3; i++) EXPECT_EQ(test::call(h, "192.0.2.2").status, 200);
  for (int i = 0; i < 3; i++) EXPECT_EQ(test::call(h, "2001:db8::1").status, 200);
  EXPECT_EQ(test::call(h, "2001:db8::1").status, 429);
  EXPECT_EQ(test::call(h, "192.0.2.2").status, 429);
}

TEST(RateLimiter, RequestsWithoutAClientKeyMeetOnlyTheServerLimit) {
  ManualClock clock;
  RateLimiter limiter({.server = {.per_second = 1, .burst = 5},
                       .per_client = {.per_second = 1, .burst = 1},
                       .time = clock.source()});
  http::Handler h = limiter.middleware()(test::ok());
  for (int i = 0; i < 5; i++) EXPECT_EQ(test::call(h, "").status, 200) << i;
  EXPECT_EQ(test::call(h, "").status, 429);
  EXPECT_EQ(limiter.refused_by_server(), 1u);
  EXPECT_EQ(limiter.refused_by_client(), 0u);
}

TEST(RateLimiter, ServerBucketIsSharedByAllClients) {
  ManualClock clock;
  RateLimiter limiter({.server = {.per_second = 10, .burst = 4}, .time = clock.source()});
  http::Handler h = limiter.middleware()(test::ok());
  for (int i = 0; i < 4; i++) EXPECT_EQ(test::call(h, ip(i)).status, 200);
  http::Response r = test::call(h, ip(99));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("Retry-After"), "1");  // 100 ms, rounded up
  clock.advance(milliseconds(100));
  EXPECT_EQ(test::call(h, ip(99)).status, 200);
}

TEST(RateLimiter, ClientLimitIsCheckedFirstSoAnAbuserDoesNotDrainTheServer) {
  ManualClock clock;
  RateLimiter limiter({.server = {.per_second = 1, .burst = 10},
                       .per_client = {.per_second = 1, .burst = 2},
                       .time = clock.source()});
  http::Handler h = limiter.middleware()(test::ok());
  for (int i = 0; i < 100; i++) test::call(h, "198.51.100.7");  // 2 admitted, 98 refused
  EXPECT_EQ(limiter.refused_by_client(), 98u);
  for (int i = 0; i < 8; i++) EXPECT_EQ(test::call(h, ip(i)).status, 200) << i;
}

TEST(RateLimiter, CustomClientKey) {
  ManualClock clock;
  RateLimiter limiter({.per_client = {.per_second = 1, .burst = 1},
                       .client_key = [](const http::Request& r) { return r.header("X-Api-Key"); },
                       .time = clock.source()});
  http::Handler h = limiter.middleware()(test::ok());
  EXPECT_EQ(test::serve_get(h, "/", "X-Api-Key: a\r\n").status, 200);
  EXPECT_EQ(test::serve_get(h, "/", "X-Api-Key: a\r\n").status, 429);
  EXPECT_EQ(test::serve_get(h, "/", "X-Api-Key: b\r\n").status, 200);
}

TEST(RateLimiter, ThroughASessionTheClientSeesTheFields) {
  ManualClock clock;
  RateLimiter limiter({.server = {.per_second = 0.1, .burst = 1}, .time = clock.source()});
  http::Handler h = limiter.middleware()(test::ok());
  EXPECT_EQ(test::serve_get(h).status, 200);
  http::test::Parsed p = test::serve_get(h);
  EXPECT_EQ(p.status, 429);
  EXPECT_EQ(p.field("Retry-After"), "10");
  EXPECT_EQ(p.body, "too many requests\n");
  EXPECT_FALSE(p.closes());  // a refusal is an answer: the connection stays usable
}

TEST(ClientBuckets, TableNeverHoldsMoreThanItsCapacity) {
  ManualClock clock;
  ClientBuckets t({.per_second = 1, .burst = 1}, 100);
  EXPECT_GE(t.capacity(), 100u);
  EXPECT_LT(t.capacity(), 2 * 100u + 2 * ClientBuckets::kWays);
  for (int i = 0; i < 10'000; i++) t.take(ip(i), clock.now());
  EXPECT_EQ(t.size(), t.capacity());
}

TEST(ClientBuckets, IdleEntriesAreEvictedBeforeBusyOnes) {
  // One set of 7 ways. Six clients stay busy (their buckets empty); one refilled long ago. A
  // newcomer takes the refilled client's way, so no busy client is forgotten.
  ManualClock clock;
  ClientBuckets t({.per_second = 1, .burst = 1}, 1);
  ASSERT_EQ(t.capacity(), ClientBuckets::kWays);
  t.take("idle", clock.now());
  clock.advance(seconds(10));
  for (int i = 0; i < 6; i++) ASSERT_TRUE(t.take(ip(i), clock.now()).allowed);
  EXPECT_TRUE(t.take("newcomer", clock.now()).allowed);
  EXPECT_EQ(t.evictions(), 0u);
  for (int i = 0; i < 6; i++) EXPECT_FALSE(t.take(ip(i), clock.now()).allowed) << i;
  EXPECT_FALSE(t.take("newcomer", clock.now()).allowed);
}

TEST(ClientBuckets, WhenAllAreBusyTheOneClosestToFullGoes) {
  ManualClock clock;
  ClientBuckets t({.per_second = 1, .burst = 1}, 1);
  for (int i = 0; i < 7; i++) {
    ASSERT_TRUE(t.take(ip(i), clock.now()).allowed);
    clock.advance(milliseconds(100));  // ip(0) refills first
  }
  EXPECT_TRUE(t.take("newcomer", clock.now()).allowed);
  EXPECT_EQ(t.evictions(), 1u);
  EXPECT_TRUE(t.take(ip(0), clock.now()).allowed);  // forgotten: a fresh bucket (the cost)
  for (int i = 2; i < 7; i++) EXPECT_FALSE(t.take(ip(i), clock.now()).allowed) << i;
}

TEST(ClientBuckets, ConcurrentClientsEachGetExactlyTheirBurst) {
  // 8 threads, 64 clients each shared by all threads, a frozen clock: each client is admitted
  // exactly `burst` times in total.
  ManualClock clock;
  ClientBuckets t({.per_second = 1, .burst = 50}, 1024);
  std::vector<std::atomic<int>> admitted(64);
  std::vector<std::thread> threads;
  for (int th = 0; th < 8; th++)
    threads.emplace_back([&] {
      for (int round = 0; round < 20; round++)
        for (int c = 0; c < 64; c++) admitted[c] += t.take(ip(c), clock.now()).allowed;
    });
  for (std::thread& th : threads) th.join();
  for (int c = 0; c < 64; c++) EXPECT_EQ(admitted[c].load(), 50) << c;
}

TEST(RateLimiter, MetricsCountRefusalsByScope) {
  ManualClock clock;
  RateLimiter limiter({.server = {.per_second = 1, .burst = 2},
                       .per_client = {.per_second = 1, .burst = 1},
                       .time = clock.source()});
  Registry reg;
  limiter.register_metrics(reg, "t_");
  http::Handler h = limiter.middleware()(test::ok());
  test::call(h, "a");
  test::call(h, "a");  // client
  test::call(h, "b");
  test::call(h, "c");  // server
  std::string text = reg.render();
  EXPECT_NE(text.find("t_rate_limited_total{scope=\"client\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_rate_limited_total{scope=\"server\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_rate_limit_evictions_total 0\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace mpg::kit
