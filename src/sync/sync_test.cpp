// sync_test.cpp: Mutex, WaitGroup, CondVar, Once and Semaphore (Go's sync tests, in spirit).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <unistd.h>
#include <cstdlib>
#include <vector>

#include "mpg/mpg.hpp"
#include "runtime/test_util.hpp"

using namespace std::chrono_literals;
using mpg::testing::max_live;
using mpg::testing::scaled;
using mpg::testing::wait_waiting;
using mpg::testing::under_sanitizer;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kProcs[] = {1, 2, 4};

// ---------------------------------------------------------------------------------------------
// Mutex.

// Invariant: mutual exclusion: at most one goroutine is ever inside, and no increment of a
// plain counter is lost, with many contending goroutines (some yielding while holding it).
TEST(Mutex, CounterUnderContention) {
  const int gs = int(max_live(100));
  const long iters = scaled(20000);
  for (int procs : kProcs) {
    long counter = 0;
    std::atomic<int> inside{0}, overlap{0};
    mpg::run(
        [&] {
          mpg::Mutex m;
          mpg::WaitGroup wg;
          for (int g = 0; g < gs; g++) {
            wg.add(1);
            mpg::go([&, g] {
              for (long i = 0; i < iters; i++) {
                m.lock();
                if (inside.fetch_add(1, std::memory_order_relaxed) != 0) overlap++;
                counter++;
                if ((i + g) % 64 == 0) mpg::yield();  // hold it across a reschedule
                inside.fetch_sub(1, std::memory_order_relaxed);
                m.unlock();
              }
              wg.done();
            });
          }
          wg.wait();
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(counter, gs * iters) << "procs=" << procs;
    EXPECT_EQ(overlap.load(), 0) << "procs=" << procs;
  }
}

// Invariant: try_lock takes a free mutex and never a held one (from any goroutine).
TEST(Mutex, TryLock) {
  for (int procs : {1, 2}) {
    mpg::run(
        [] {
          mpg::Mutex m;
          EXPECT_TRUE(m.try_lock());
          EXPECT_FALSE(m.try_lock());
          bool other = true;
          mpg::WaitGroup wg;
          wg.add(1);
          mpg::go([&] {
            other = m.try_lock();
            wg.done();
          });
          wg.wait();
          EXPECT_FALSE(other);
          m.unlock();
          EXPECT_TRUE(m.try_lock());
          m.unlock();
          // A goroutine blocked in lock() gets it once it is released.
          m.lock();
          bool got = false;
          wg.add(1);
          mpg::go([&] {
            m.lock();
            got = true;
            m.unlock();
            wg.done();
          });
          EXPECT_TRUE(wait_waiting(1));
          EXPECT_FALSE(got);
          m.unlock();
          wg.wait();
          EXPECT_TRUE(got);
          EXPECT_TRUE(m.try_lock());
          m.unlock();
        },
        mpg::Config{.procs = procs});
  }
}

// Invariant: Mutex is Lockable: std::lock_guard, std::unique_lock and std::scoped_lock lock and
// unlock it.
TEST(Mutex, StdLockGuardsWork) {
  mpg::run(
      [] {
        mpg::Mutex m, m2;
        {
          std::lock_guard<mpg::Mutex> lk(m);
          EXPECT_FALSE(m.try_lock());
        }
        EXPECT_TRUE(m.try_lock());
        m.unlock();
        {
          std::unique_lock<mpg::Mutex> lk(m);
          EXPECT_TRUE(lk.owns_lock());
          lk.unlock();
          EXPECT_TRUE(m.try_lock());
          m.unlock();
          lk.lock();
          EXPECT_FALSE(m.try_lock());
        }
        {
          std::unique_lock<mpg::Mutex> lk(m, std::try_to_lock);
          EXPECT_TRUE(lk.owns_lock());
        }
        {
          std::scoped_lock lk(m, m2);
          EXPECT_FALSE(m.try_lock());
          EXPECT_FALSE(m2.try_lock());
        }
        EXPECT_TRUE(m.try_lock());
        EXPECT_TRUE(m2.try_lock());
        m.unlock();
        m2.unlock();
      },
      mpg::Config{.procs = 2});
}

// Invariant: unlocking an unlocked mutex throws SyncMisuse.
TEST(Mutex, UnlockOfUnlockedThrows) {
  mpg::run([] {
    {
      mpg::Mutex m;
      EXPECT_THROW(m.unlock(), mpg::SyncMisuse);
    }
    {
      mpg::Mutex m;
      m.lock();
      m.unlock();
      EXPECT_THROW(m.unlock(), mpg::SyncMisuse);
    }
  });
}

// Invariant (Go makes this a fatal error; mpg throws, so a caller may catch it and go on): the
// failed unlock leaves the mutex usable. (Regression: unlock subtracted kLocked before checking,
// so the throw left the state at -1 and the mutex could never be taken again.)
TEST(Mutex, UsableAfterUnlockOfUnlockedThrows) {
  mpg::run([] {
    mpg::Mutex m;
    EXPECT_THROW(m.unlock(), mpg::SyncMisuse);
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
}

// Invariant: starvation mode bounds the wait: a goroutine that asks for a mutex held almost
// continuously by others (who re-lock at once after unlocking) gets it every time within a
// bound (1 s; Go's starvation mode makes it about the hold time).
TEST(Mutex, StarvationModeBoundsTheWait) {
  for (int procs : kProcs) {
    Clock::duration worst{};
    int acquired = 0;
    mpg::run(
        [&] {
          mpg::Mutex m;
          std::atomic<bool> stop{false};
          mpg::WaitGroup wg;
          const int hogs = 3;
          for (int h = 0; h < hogs; h++) {
            wg.add(1);
            mpg::go([&] {
              while (!stop.load(std::memory_order_relaxed)) {
                m.lock();
                auto until = Clock::now() + 100us;  // hold it, letting others queue up
                while (Clock::now() < until) mpg::yield();
                m.unlock();
              }
              wg.done();
            });
          }
          mpg::sleep_for(2ms);  // let the hogs get going
          for (int i = 0; i < 10; i++) {
            auto t0 = Clock::now();
            m.lock();
            auto dt = Clock::now() - t0;
            if (dt > worst) worst = dt;
            acquired++;
            m.unlock();
            mpg::sleep_for(200us);
          }
          stop = true;
          wg.wait();
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(acquired, 10) << "procs=" << procs;
    EXPECT_LT(worst, 1s) << "procs=" << procs;
  }
}

// ---------------------------------------------------------------------------------------------
// WaitGroup.

// Invariant: wait on a zero counter returns at once (also after the counter went back to zero).
TEST(WaitGroup, WaitWithZeroReturnsImmediately) {
  mpg::run([] {
    mpg::WaitGroup wg;
    auto t0 = Clock::now();
    wg.wait();
    wg.add(2);
    wg.done();
    wg.done();
    wg.wait();
    wg.wait();
    EXPECT_LT(Clock::now() - t0, 100ms);
  });
}

// Invariant: a WaitGroup can be reused for round after round: each wait returns only after
// every done() of its round (no early return, no hang), also with several waiters per round.
TEST(WaitGroup, ReuseAcrossRounds) {
  const int rounds = int(scaled(500) < 50 ? 50 : scaled(500));
  for (int procs : kProcs) {
    int early = 0;
    long done_total = 0;
    mpg::run(
        [&] {
          mpg::WaitGroup wg;
          std::atomic<int> finished{0};
          for (int r = 0; r < rounds; r++) {
            const int workers = 1 + r % 7;
            finished = 0;
            wg.add(workers);
            for (int w = 0; w < workers; w++) {
              mpg::go([&, w] {
                if (w % 2) mpg::yield();
                finished++;
                wg.done();
              });
            }
            // Extra waiters; the next round starts only after they returned (Go's reuse rule).
            mpg::WaitGroup waiters_back;
            const int waiters = r % 3;
            std::atomic<int> early_waiters{0};
            for (int k = 0; k < waiters; k++) {
              waiters_back.add(1);
              mpg::go([&] {
                wg.wait();
                if (finished.load() != workers) early_waiters++;
                waiters_back.done();
              });
            }
            wg.wait();
            if (finished.load() != workers) early++;
            waiters_back.wait();
            early += early_waiters.load();
            done_total += finished.load();
          }
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(early, 0) << "procs=" << procs;
    long want = 0;
    for (int r = 0; r < rounds; r++) want += 1 + r % 7;
    EXPECT_EQ(done_total, want) << "procs=" << procs;
  }
}

// Invariant: a negative counter throws SyncMisuse.
TEST(WaitGroup, NegativeCounterThrows) {
  mpg::run([] {
    {
      mpg::WaitGroup wg;
      EXPECT_THROW(wg.done(), mpg::SyncMisuse);
    }
    {
      mpg::WaitGroup wg;
      wg.add(2);
      wg.done();
      EXPECT_THROW(wg.add(-2), mpg::SyncMisuse);
    }
  });
}

// Invariant: every parked waiter is released when the counter reaches zero.
TEST(WaitGroup, ManyWaitersAllReleased) {
  const int n = int(max_live(scaled(2000)));
  for (int procs : kProcs) {
    std::atomic<int> released{0};
    bool parked = false;
    mpg::run(
        [&] {
          mpg::WaitGroup wg, back;
          wg.add(3);
          for (int i = 0; i < n; i++) {
            back.add(1);
            mpg::go([&] {
              wg.wait();
              released++;
              back.done();
            });
          }
          parked = wait_waiting(std::uint64_t(n));
          wg.done();
          wg.done();
          mpg::yield();
          EXPECT_EQ(released.load(), 0);  // still one to go
          wg.done();
          back.wait();
        },
        mpg::Config{.procs = procs});
    EXPECT_TRUE(parked) << "procs=" << procs;
    EXPECT_EQ(released.load(), n) << "procs=" << procs;
  }
}

// ---------------------------------------------------------------------------------------------
// CondVar.

// Invariant: a bounded queue built on Mutex + CondVar (not-empty / not-full) delivers every
// item exactly once, never overfills, and ends with no goroutine stuck.
TEST(CondVar, ProducerConsumerQueue) {
  const int producers = 8, consumers = 8;
  const int per = int(scaled(20000));
  const std::size_t bound = 16;
  for (int procs : kProcs) {
    std::vector<int> seen(std::size_t(producers * per), 0);
    int overfull = 0;
    mpg::run(
        [&] {
          mpg::Mutex m;
          mpg::CondVar not_empty, not_full;
          std::deque<int> q;
          int producers_left = producers;
          mpg::WaitGroup wg;
          for (int p = 0; p < producers; p++) {
            wg.add(1);
            mpg::go([&, p] {
              for (int i = 0; i < per; i++) {
                std::unique_lock<mpg::Mutex> lk(m);
                not_full.wait(lk, [&] { return q.size() < bound; });
                q.push_back(p * per + i);
                if (q.size() > bound) overfull++;
                not_empty.signal();
              }
              std::lock_guard<mpg::Mutex> lk(m);
              if (--producers_left == 0) not_empty.broadcast();
              wg.done();
            });
          }
          for (int c = 0; c < consumers; c++) {
            wg.add(1);
            mpg::go([&] {
              for (;;) {
                std::unique_lock<mpg::Mutex> lk(m);
                not_empty.wait(lk, [&] { return !q.empty() || producers_left == 0; });
                if (q.empty()) break;
                int v = q.front();
                q.pop_front();
                seen[std::size_t(v)]++;
                not_full.signal();
              }
              wg.done();
            });
          }
          wg.wait();
        },
        mpg::Config{.procs = procs});
    long lost = 0, dup = 0;
    for (int v : seen) lost += v == 0, dup += v > 1;
    EXPECT_EQ(lost, 0) << "procs=" << procs;
    EXPECT_EQ(dup, 0) << "procs=" << procs;
    EXPECT_EQ(overfull, 0) << "procs=" << procs;
  }
}

// Invariant: broadcast wakes every waiter; signal wakes one at a time (n signals release n
// waiters, each consuming one token); signal and broadcast with no waiter are no-ops.
TEST(CondVar, BroadcastWakesAllSignalWakesOne) {
  const int n = int(max_live(scaled(1000)));
  for (int procs : kProcs) {
    std::atomic<int> woke{0};
    int tokens_left = -1, consumed = 0;
    bool parked1 = false, parked2 = false;
    mpg::run(
        [&] {
          mpg::Mutex m;
          mpg::CondVar cv;
          cv.signal();  // nobody waits: nothing happens, nothing is remembered
          cv.broadcast();
          bool go_flag = false;
          mpg::WaitGroup wg;
          for (int i = 0; i < n; i++) {
            wg.add(1);
            mpg::go([&] {
              std::unique_lock<mpg::Mutex> lk(m);
              while (!go_flag) cv.wait(lk);
              woke++;
              wg.done();
            });
          }
          parked1 = wait_waiting(std::uint64_t(n));
          {
            std::lock_guard<mpg::Mutex> lk(m);
            go_flag = true;
          }
          cv.broadcast();
          wg.wait();

          int tokens = 0;
          for (int i = 0; i < n; i++) {
            wg.add(1);
            mpg::go([&] {
              std::unique_lock<mpg::Mutex> lk(m);
              cv.wait(lk, [&] { return tokens > 0; });
              tokens--;
              consumed++;
              wg.done();
            });
          }
          parked2 = wait_waiting(std::uint64_t(n));
          for (int i = 0; i < n; i++) {
            std::lock_guard<mpg::Mutex> lk(m);
            tokens++;
            cv.signal();
          }
          wg.wait();
          tokens_left = tokens;
        },
        mpg::Config{.procs = procs});
    EXPECT_TRUE(parked1 && parked2) << "procs=" << procs;
    EXPECT_EQ(woke.load(), n) << "procs=" << procs;
    EXPECT_EQ(consumed, n) << "procs=" << procs;
    EXPECT_EQ(tokens_left, 0) << "procs=" << procs;
  }
}

// Invariant: CondVar::wait on a mutex in starvation mode does not deadlock at procs 1.
// (Regression: wait called m.unlock() while holding the CondVar's internal thread-level Lock;
// a starving Mutex hands itself over and yields to the new owner, whose cv.signal() then
// blocked the only M on that Lock. Now wait takes a ticket, Go's notifyList.) Run in a child
// process with an alarm, so a regression fails the test instead of hanging it.
TEST(CondVar, WaitOnStarvingMutexDoesNotDeadlock) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        alarm(5);
        mpg::run(
            [] {
              mpg::Mutex m;
              mpg::CondVar cv;
              mpg::WaitGroup wg;
              bool ready = false;
              m.lock();
              wg.add(1);
              mpg::go([&] {  // waits > 1 ms for m
                m.lock();
                ready = true;
                cv.signal();
                m.unlock();
                wg.done();
              });
              mpg::sleep_for(3ms);
              m.unlock();  // normal mode: wakes the waiter...
              m.lock();    // ...but main barges back in first
              mpg::yield();  // the waiter finds m held after > 1 ms: starvation mode
              while (!ready) cv.wait(m);  // hands m off, yields holding cv's Lock
              m.unlock();
              wg.wait();
            },
            mpg::Config{.procs = 1});
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// ---------------------------------------------------------------------------------------------
// Once.

// Invariant: with many concurrent callers, f runs exactly once, and every caller returns only
// after f has finished.
TEST(Once, ManyConcurrentCallersRunFOnce) {
  const int n = int(max_live(scaled(1000)));
  for (int procs : kProcs) {
    std::atomic<int> runs{0}, early{0};
    bool done_after = false;
    mpg::run(
        [&] {
          mpg::Once once;
          std::atomic<bool> finished{false};
          mpg::WaitGroup wg;
          for (int i = 0; i < n; i++) {
            wg.add(1);
            mpg::go([&] {
              once.call([&] {
                runs++;
                mpg::sleep_for(5ms);  // others pile up meanwhile
                finished = true;
              });
              if (!finished.load()) early++;
              wg.done();
            });
          }
          wg.wait();
          once.call([&] { runs++; });
          done_after = once.done();
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(runs.load(), 1) << "procs=" << procs;
    EXPECT_EQ(early.load(), 0) << "procs=" << procs;
    EXPECT_TRUE(done_after) << "procs=" << procs;
  }
}

// Invariant: an f that throws propagates to its caller and still counts as done (Go's rule):
// later calls do not run f again.
TEST(Once, ThrowingFStillMarksDone) {
  mpg::run([] {
    mpg::Once once;
    EXPECT_FALSE(once.done());
    int runs = 0;
    EXPECT_THROW(once.call([&] {
      runs++;
      throw std::runtime_error("boom");
    }),
                 std::runtime_error);
    EXPECT_TRUE(once.done());
    once.call([&] { runs++; });
    EXPECT_EQ(runs, 1);
  });
}

// ---------------------------------------------------------------------------------------------
// Semaphore.

// Invariant: never more than n holders at once under contention (and, with enough contenders
// that yield while holding, exactly n at some point); all units are back at the end.
TEST(Semaphore, MaxConcurrencyBounded) {
  const int gs = int(max_live(200));
  const int iters = int(scaled(2000) < 100 ? 100 : scaled(2000));
  for (int procs : kProcs) {
    for (std::uint32_t cap : {1u, 3u}) {
      std::atomic<int> inside{0}, max_inside{0};
      std::uint32_t avail_after = 0;
      mpg::run(
          [&] {
            mpg::Semaphore s(cap);
            mpg::WaitGroup wg;
            for (int g = 0; g < gs; g++) {
              wg.add(1);
              mpg::go([&] {
                for (int i = 0; i < iters / 10; i++) {
                  s.acquire();
                  int now = inside.fetch_add(1) + 1;
                  int prev = max_inside.load();
                  while (now > prev && !max_inside.compare_exchange_weak(prev, now)) {
                  }
                  // Stay inside a while (a bounded number of yields) so that cap holders meet
                  // even when the schedule is slow (TSan at procs=4 on 2 cores: with a single
                  // yield 3 holders met in only 14-15 of 20 runs): a semaphore that admits fewer
                  // than cap still never gets there, and one that admits more trips the check above.
                  for (int k = 0; k < 50 && inside.load() < int(cap); k++) mpg::yield();
                  mpg::yield();
                  inside.fetch_sub(1);
                  s.release();
                }
                wg.done();
              });
            }
            wg.wait();
            avail_after = s.available();
          },
          mpg::Config{.procs = procs});
      EXPECT_LE(max_inside.load(), int(cap)) << "procs=" << procs << " cap=" << cap;
      EXPECT_EQ(max_inside.load(), int(cap)) << "procs=" << procs << " cap=" << cap;
      EXPECT_EQ(avail_after, cap) << "procs=" << procs;
    }
  }
}

// Invariant: try_acquire takes a unit only when one is free, never blocks.
TEST(Semaphore, TryAcquire) {
  mpg::run([] {
    mpg::Semaphore s(2);
    EXPECT_EQ(s.capacity(), 2u);
    EXPECT_EQ(s.available(), 2u);
    EXPECT_TRUE(s.try_acquire());
    EXPECT_TRUE(s.try_acquire());
    EXPECT_FALSE(s.try_acquire());
    EXPECT_EQ(s.available(), 0u);
    s.release();
    EXPECT_EQ(s.available(), 1u);
    EXPECT_TRUE(s.try_acquire());
    // A blocked acquirer gets the released unit; try_acquire does not steal it afterwards.
    bool got = false;
    mpg::WaitGroup wg;
    wg.add(1);
    mpg::go([&] {
      s.acquire();
      got = true;
      wg.done();
    });
    EXPECT_TRUE(wait_waiting(1));
    EXPECT_FALSE(got);
    s.release();
    wg.wait();
    EXPECT_TRUE(got);
    EXPECT_FALSE(s.try_acquire());  // 2 held: ours and the goroutine's
    s.release();
    s.release();
    EXPECT_EQ(s.available(), 2u);
  });
}

// Invariant: releasing more units than were acquired throws SyncMisuse.
TEST(Semaphore, OverReleaseThrows) {
  mpg::run([] {
    mpg::Semaphore s(1);
    EXPECT_THROW(s.release(), mpg::SyncMisuse);
    EXPECT_EQ(s.available(), 1u);
    s.acquire();
    s.release();
    EXPECT_THROW(s.release(), mpg::SyncMisuse);
    EXPECT_EQ(s.available(), 1u);
    EXPECT_TRUE(s.try_acquire());
    EXPECT_FALSE(s.try_acquire());
    s.release();
  });
}

}  // namespace
