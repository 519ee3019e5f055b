// runq_test.cpp: the run queues as data structures (Go's runq tests in spirit): the ring keeps
// FIFO order and holds exactly 256; concurrent stealing neither loses nor duplicates; the
// emptiness check is never spuriously true while a G moves between runnext and the ring. And
// the idle M's Note, whose spin adapts to how soon wakes come.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "mpg/mpg.hpp"
#include "runtime/lock.hpp"
#include "runtime/sched.hpp"
#include "runtime/test_util.hpp"

using mpg::detail::G;
using mpg::detail::kLocalQueueSize;
using mpg::detail::LocalRunQueue;

namespace {

G* fake(std::uintptr_t i) { return reinterpret_cast<G*>((i + 1) * 64); }
std::uintptr_t unfake(G* g) { return reinterpret_cast<std::uintptr_t>(g) / 64 - 1; }

// The ring is FIFO and holds exactly 256 Gs.
TEST(LocalRunQueue, FifoAndExactly256) {
  auto q = std::make_unique<LocalRunQueue>();
  for (std::uintptr_t round = 0; round < 3; round++) {
    for (std::uintptr_t i = 0; i < kLocalQueueSize; i++) ASSERT_TRUE(q->push(fake(i))) << i;
    EXPECT_FALSE(q->push(fake(999))) << "a 257th G fit";
    EXPECT_EQ(q->size(), kLocalQueueSize);
    for (std::uintptr_t i = 0; i < kLocalQueueSize; i++) ASSERT_EQ(unfake(q->pop()), i);
    EXPECT_EQ(q->pop(), nullptr);
  }
}

// take_half moves the oldest 128 in order, leaving the newest 128.
TEST(LocalRunQueue, TakeHalfMovesOldest) {
  auto q = std::make_unique<LocalRunQueue>();
  for (std::uintptr_t i = 0; i < kLocalQueueSize; i++) q->push(fake(i));
  G* half[kLocalQueueSize / 2];
  ASSERT_TRUE(q->take_half(half));
  for (std::uintptr_t i = 0; i < kLocalQueueSize / 2; i++) EXPECT_EQ(unfake(half[i]), i);
  EXPECT_EQ(q->size(), kLocalQueueSize / 2);
  EXPECT_EQ(unfake(q->pop()), kLocalQueueSize / 2);
}

// One owner pushing and popping, three thieves grabbing: every G is taken exactly once.
TEST(LocalRunQueue, ConcurrentStealLosesAndDuplicatesNothing) {
  const std::uintptr_t total = std::uintptr_t(mpg::testing::scaled(1'000'000));
  auto victim = std::make_unique<LocalRunQueue>();
  std::vector<std::atomic<std::uint8_t>> seen(total);
  std::atomic<bool> done{false};
  auto take = [&](G* g) {
    std::uintptr_t i = unfake(g);
    ASSERT_LT(i, total);
    ASSERT_EQ(seen[i].fetch_add(1), 0) << "G " << i << " taken twice";
  };
  std::vector<std::thread> thieves;
  for (int t = 0; t < 3; t++) {
    thieves.emplace_back([&] {
      auto mine = std::make_unique<LocalRunQueue>();
      while (!done.load(std::memory_order_acquire) || victim->size() > 0) {
        std::uint32_t tail = mine->tail_relaxed();
        std::uint32_t n = victim->grab(*mine, tail);
        if (n > 0) {
          mine->publish(tail + n);
          while (G* g = mine->pop()) take(g);
        }
      }
    });
  }
  std::uintptr_t next = 0;
  while (next < total) {
    // Push a burst, pop a little: the owner competes with the thieves at the head.
    for (int k = 0; k < 7 && next < total; k++) {
      if (victim->push(fake(next))) next++;
      else break;
    }
    if (G* g = victim->pop()) take(g);
  }
  while (G* g = victim->pop()) take(g);
  done.store(true, std::memory_order_release);
  for (auto& t : thieves) t.join();
  for (std::uintptr_t i = 0; i < total; i++) ASSERT_EQ(seen[i].load(), 1) << "G " << i << " lost";
}

// Go's runqempty race: (1) G1 in runnext, ring empty; (2) runqput(G2, next) kicks G1 into the
// ring; (3) runqget takes G2 from runnext. A reader that saw the empty ring before (2) and the
// empty runnext after (3) would call the P empty though G1 is in it. The P below always holds
// at least one G, so runq_empty must never be true.
TEST(RunQueue, EmptyNeverSpuriousWhileRunnextChurns) {
  mpg::run([] {
    auto p = std::make_unique<mpg::detail::P>();
    G* cur = fake(1);
    G* other = fake(2);
    p->runnext.store(cur);
    std::atomic<bool> stop{false};
    std::atomic<long> spurious{0}, checks{0};
    std::thread checker([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        if (mpg::detail::runq_empty(p.get())) spurious++;
        checks++;
      }
    });
    const long rounds = mpg::testing::scaled(2'000'000);
    for (long i = 0; i < rounds; i++) {
      mpg::detail::runqput(p.get(), other, true);  // runnext = other, ring = [cur]
      G* n = p->runnext.load();
      ASSERT_TRUE(p->runnext.compare_exchange_strong(n, nullptr));  // runqget: runnext empty, ring = [cur]
      ASSERT_EQ(n, other);
      mpg::detail::runqput(p.get(), other, true);  // runnext = other, ring = [cur]
      ASSERT_EQ(p->runq.pop(), cur);                // runnext = other, ring empty
      std::swap(cur, other);
    }
    stop = true;
    checker.join();
    EXPECT_EQ(spurious.load(), 0) << "of " << checks.load() << " checks";
  });
}


// The idle M's Note adapts its spin (lock.hpp): a wake that comes after more than the longest
// spin halves the next spin, down to none; a wake that comes within it restores the full spin.
TEST(Note, SpinShrinksForLateWakesAndReturnsForPromptOnes) {
  using mpg::detail::Note;
  Note n;
  EXPECT_EQ(n.spin_ns(), Note::kNoteSpinNs);
  // The waker waits until the sleeper is past its spin, so the wake is late however the two
  // threads are scheduled.
  auto wake_after = [&](std::chrono::microseconds d) {
    n.clear();
    std::thread t([&] {
      while (!n.sleeping()) std::this_thread::yield();
      std::this_thread::sleep_for(d);
      n.wake();
    });
    n.sleep();
    t.join();
  };
  wake_after(std::chrono::milliseconds(3));
  EXPECT_EQ(n.spin_ns(), Note::kNoteSpinNs / 2);
  for (int i = 0; i < 6; i++) wake_after(std::chrono::milliseconds(2));
  EXPECT_EQ(n.spin_ns(), 0) << "late wakes leave no spin";
  n.clear();
  n.wake();  // already woken when it sleeps: the promptest wake there is
  n.sleep();
  EXPECT_EQ(n.spin_ns(), Note::kNoteSpinNs);
  // A timed sleep that runs out counts as a late wake.
  n.clear();
  EXPECT_FALSE(n.sleep_for(2'000'000));
  EXPECT_EQ(n.spin_ns(), Note::kNoteSpinNs / 2);
}

}  // namespace
