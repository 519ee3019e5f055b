// scavenger_test.cpp: the Scavenger gives a burst of frees in the middle of the heap back to the
// kernel (RSS falls), leaves churn alone, and publishes its counters.
#include "mpg/kit/scavenger.hpp"

#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "mpg/kit/registry.hpp"
#include "runtime/test_util.hpp"

namespace {

// Fragmented: 32 MiB in 4 KiB blocks (below the mmap threshold, so from the heap), every block
// touched; then all but one block in sixteen are freed. Each freed run spans whole pages, but
// the kept blocks pin the heap's top, so free() alone cannot return a byte of it.
struct Fragmented {
  static constexpr std::size_t kBlock = 4096, kBlocks = 8192, kKeepEvery = 16;
  std::vector<std::unique_ptr<char[]>> kept;
  Fragmented() {
    std::vector<std::unique_ptr<char[]>> all;
    for (std::size_t i = 0; i < kBlocks; i++) {
      all.emplace_back(new char[kBlock]);
      for (std::size_t k = 0; k < kBlock; k += 512) all.back()[k] = char(i);
    }
    for (std::size_t i = 0; i < kBlocks; i++)
      if (i % kKeepEvery == kKeepEvery - 1) kept.push_back(std::move(all[i]));
  }
};

TEST(Scavenger, GivesABurstOfFreesBackAndRssFalls) {
  if (!mpg::kit::Scavenger::active()) GTEST_SKIP() << "malloc is not glibc's here (a sanitizer's)";
  mpg::kit::Scavenger s;
  s.tick();  // the baseline
  Fragmented f;
  long before = mpg::testing::resident_bytes();
  ASSERT_TRUE(s.tick()) << "30 MiB freed in the middle of the heap must trigger a trim";
  long after = mpg::testing::resident_bytes();
  EXPECT_GT(s.stats().free_bytes, std::size_t(20) << 20);
  EXPECT_LT(after, before - (16L << 20)) << "RSS " << before << " -> " << after;
  // Nothing new was freed: the same free memory is not trimmed again.
  EXPECT_FALSE(s.tick());
  EXPECT_EQ(s.stats().trims, 1u);
  EXPECT_EQ(s.stats().ticks, 3u);
}

TEST(Scavenger, LeavesSmallOrChurningFreesAlone) {
  if (!mpg::kit::Scavenger::active()) GTEST_SKIP() << "malloc is not glibc's here (a sanitizer's)";
  mpg::kit::Scavenger s(mpg::kit::ScavengerConfig{.min_growth = 8u << 20, .growth_ratio = 0.25});
  s.tick();
  for (int round = 0; round < 20; round++) {
    std::vector<std::unique_ptr<char[]>> v;
    for (int i = 0; i < 256; i++) v.emplace_back(new char[4096]);  // 1 MiB, freed and reused
    v.clear();
    EXPECT_FALSE(s.tick()) << "round " << round;
  }
  EXPECT_EQ(s.stats().trims, 0u);
}

// A heap that swings wide (bursts of frees and reuse) is trimmed at most once per min_interval.
TEST(Scavenger, TrimsAtMostOncePerInterval) {
  if (!mpg::kit::Scavenger::active()) GTEST_SKIP() << "malloc is not glibc's here (a sanitizer's)";
  // Whole bursts are freed here: keep free() from handing the top of the heap back by itself,
  // so every swing shows in the free bytes (restored at the end).
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mpg::kit::ManualClock clock;
  mpg::kit::Scavenger s(mpg::kit::ScavengerConfig{.min_interval = std::chrono::seconds(10), .time = clock.source()});
  s.tick();
  {
    Fragmented f;
  }  // 32 MiB freed: the first trim
  ASSERT_TRUE(s.tick());
  for (int cycle = 0; cycle < 3; cycle++) {
    auto f = std::make_unique<Fragmented>();  // reuses the trimmed memory: free bytes fall
    s.tick();
    f.reset();  // and rise again
    clock.advance(std::chrono::seconds(1));
    EXPECT_FALSE(s.tick()) << "cycle " << cycle << ": within the interval";
  }
  clock.advance(std::chrono::seconds(10));
  EXPECT_TRUE(s.tick()) << "the interval has passed and the growth is still there";
  EXPECT_EQ(s.stats().trims, 2u);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}

TEST(Scavenger, PublishesItsCounters) {
  mpg::kit::Registry r;
  mpg::kit::Scavenger s;
  s.register_metrics(r);
  s.tick();
  std::string text = r.render();
  EXPECT_NE(text.find("mpg_scavenger_trims_total"), std::string::npos) << text;
  EXPECT_NE(text.find("mpg_heap_free_bytes"), std::string::npos);
  EXPECT_NE(text.find("mpg_heap_in_use_bytes"), std::string::npos);
}

}  // namespace
