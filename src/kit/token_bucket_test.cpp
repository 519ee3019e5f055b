// token_bucket_test.cpp: the bucket's refill arithmetic under an injected clock, the rounding of
// Retry-After, and a shared bucket under threads admitting exactly its burst.
#include "mpg/kit/token_bucket.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "mpg/kit/refusal.hpp"

namespace mpg::kit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(TokenBucket, StartsFullAndAdmitsExactlyTheBurst) {
  ManualClock clock;
  TokenBucket b({.per_second = 10, .burst = 5});
  EXPECT_DOUBLE_EQ(b.tokens(clock.now()), 5);
  for (int i = 0; i < 5; i++) EXPECT_TRUE(b.take(clock.now()).allowed) << i;
  Decision d = b.take(clock.now());
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.wait, milliseconds(100));  // one token refills in 1/10 s
  EXPECT_DOUBLE_EQ(b.tokens(clock.now()), 0);
}

TEST(TokenBucket, RefillsContinuouslyAtTheRateUpToTheBurst) {
  ManualClock clock;
  TokenBucket b({.per_second = 10, .burst = 5});
  for (int i = 0; i < 5; i++) ASSERT_TRUE(b.take(clock.now()).allowed);
  clock.advance(milliseconds(250));
  EXPECT_DOUBLE_EQ(b.tokens(clock.now()), 2.5);
  EXPECT_TRUE(b.take(clock.now()).allowed);
  EXPECT_TRUE(b.take(clock.now()).allowed);
  Decision d = b.take(clock.now());
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.wait, milliseconds(50));  // half a token left, half a token to wait for
  clock.advance(seconds(60));
  EXPECT_DOUBLE_EQ(b.tokens(clock.now()), 5);  // capped at the burst, however long idle
  for (int i = 0; i < 5; i++) EXPECT_TRUE(b.take(clock.now()).allowed);
  EXPECT_FALSE(b.take(clock.now()).allowed);
}

TEST(TokenBucket, SustainedRateIsTheRate) {
  ManualClock clock;
  TokenBucket b({.per_second = 100, .burst = 1});
  int admitted = 0;
  for (int ms = 0; ms < 10'000; ms++) {  // one attempt a millisecond for 10 s
    admitted += b.take(clock.now()).allowed;
    clock.advance(milliseconds(1));
  }
  EXPECT_EQ(admitted, 1000);
}

TEST(TokenBucket, RefusalChangesNothing) {
  ManualClock clock;
  TokenBucket b({.per_second = 1, .burst = 1});
  ASSERT_TRUE(b.take(clock.now()).allowed);
  for (int i = 0; i < 100; i++) ASSERT_FALSE(b.take(clock.now()).allowed);
  clock.advance(seconds(1));
  EXPECT_TRUE(b.take(clock.now()).allowed);  // refused attempts did not push the refill back
}

TEST(TokenBucket, FractionalRatesAndBursts) {
  ManualClock clock;
  TokenBucket b({.per_second = 0.5, .burst = 1.5});
  EXPECT_TRUE(b.take(clock.now()).allowed);
  Decision d = b.take(clock.now());
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.wait, seconds(1));  // 0.5 token held, the next half refills in 1 s
  clock.advance(seconds(1));
  EXPECT_TRUE(b.take(clock.now()).allowed);
}

TEST(TokenBucket, TakingSeveralTokens) {
  ManualClock clock;
  TokenBucket b({.per_second = 10, .burst = 10});
  EXPECT_TRUE(b.take(clock.now(), 7).allowed);
  Decision d = b.take(clock.now(), 4);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.wait, milliseconds(100));
  EXPECT_TRUE(b.take(clock.now(), 3).allowed);
}

TEST(TokenBucket, AClockThatStepsBackDoesNotMintTokens) {
  ManualClock clock;
  TokenBucket b({.per_second = 10, .burst = 2});
  TimePoint later = clock.now() + seconds(5);
  ASSERT_TRUE(b.take(later).allowed);
  ASSERT_TRUE(b.take(later).allowed);
  EXPECT_FALSE(b.take(clock.now()).allowed);  // an older reading from another thread
  EXPECT_FALSE(b.take(later).allowed);
}

TEST(TokenBucket, InvalidShapesAreRefused) {
  EXPECT_THROW(TokenBucket({.per_second = 0, .burst = 1}), std::invalid_argument);
  EXPECT_THROW(TokenBucket({.per_second = -1, .burst = 1}), std::invalid_argument);
  EXPECT_THROW(TokenBucket({.per_second = 2e9, .burst = 1}), std::invalid_argument);
  EXPECT_THROW(TokenBucket({.per_second = 10, .burst = 0.5}), std::invalid_argument);
  EXPECT_THROW(TokenBucket({.per_second = 0.0 / 0.0, .burst = 1}), std::invalid_argument);
}

TEST(TokenBucket, ThreadsSharingABucketGetExactlyTheBurst) {
  // No refill during the run (a frozen clock): 8 threads race for 1,000 tokens; exactly 1,000
  // takes succeed, whatever the interleaving of the CAS loop.
  ManualClock clock;
  TokenBucket b({.per_second = 1, .burst = 1000});
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; i++) admitted += b.take(clock.now()).allowed;
    });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 1000);
}

TEST(RetryAfter, SecondsRoundedUpAtLeastOne) {
  EXPECT_EQ(retry_after_seconds(Nanos(0)), 1);
  EXPECT_EQ(retry_after_seconds(Nanos(1)), 1);
  EXPECT_EQ(retry_after_seconds(milliseconds(999)), 1);
  EXPECT_EQ(retry_after_seconds(seconds(1)), 1);
  EXPECT_EQ(retry_after_seconds(seconds(1) + Nanos(1)), 2);
  EXPECT_EQ(retry_after_seconds(milliseconds(2500)), 3);
  EXPECT_EQ(retry_after_seconds(seconds(120)), 120);
}

}  // namespace
}  // namespace mpg::kit
