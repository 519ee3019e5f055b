// stress_test.cpp: random storms for the scheduler: spawn trees, channel rings, select with
// timeouts, mutex contention, sleeps, yields, blocking calls, CPU loops that only preemption
// interrupts, and sockets through the netpoller, all at once, at procs 1..4; every storm checks
// its own count, and the run must end (no lost wake-up, no deadlock).
//
// MPG_STRESS_SECONDS sets each procs value's duration (default 2 s, so CI runs ~8 s under each
// build; `make stress` runs minutes).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mpg/mpg.hpp"
#include "mpg/net.hpp"
#include "mpg/select.hpp"
#include "runtime/test_util.hpp"

namespace mpg {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::Rng;

double stress_seconds() {
  const char* s = std::getenv("MPG_STRESS_SECONDS");
  double v = s ? std::atof(s) : 2.0;
  return v > 0 ? v : 2.0;
}

struct Tally {
  std::atomic<long> spawned{0}, finished{0};
  std::atomic<long> sent{0}, received{0};
  std::atomic<long> locked{0};
  long counter = 0;  // guarded by the storm's Mutex
  std::atomic<long> bytes_out{0}, bytes_in{0};
};

// tree: spawns a random tree of goroutines; each leaf does a little work.
void tree(Tally& t, Rng rng, int depth, WaitGroup& wg) {
  int kids = depth > 0 ? int(rng.below(4)) : 0;
  for (int i = 0; i < kids; i++) {
    wg.add(1);
    t.spawned++;
    Rng child{rng.next()};
    go([&t, child, depth, &wg] {
      tree(t, child, depth - 1, wg);
      t.finished++;
      wg.done();
    });
  }
  switch (rng.below(6)) {
    case 0: yield(); break;
    case 1: sleep_for(std::chrono::microseconds(rng.below(200))); break;
    case 2: blocking([] { ::usleep(50); }); break;
    case 3: {
      volatile std::uint64_t x = 0;  // a short CPU burst
      for (int k = 0; k < 20000; k++) x = x + std::uint64_t(k);
      break;
    }
    default: break;
  }
}

// ring: n goroutines pass tokens around a ring of unbuffered/buffered channels; some hops go
// through a select with a timeout that retries.
void ring(Tally& t, Rng rng, int n, int laps) {
  std::vector<Chan<long>> chans;
  for (int i = 0; i < n; i++) chans.push_back(rng.below(2) ? Chan<long>() : Chan<long>(int(rng.below(4) + 1)));
  WaitGroup wg;
  wg.add(n);
  for (int i = 0; i < n; i++) {
    go([&, i] {
      Chan<long> in = chans[std::size_t(i)], out = chans[std::size_t((i + 1) % n)];
      for (int lap = 0; lap < laps; lap++) {
        std::optional<long> v;
        if (i == 0) {
          out.send(lap);
          t.sent++;
          v = in.recv();
        } else {
          bool got = false;
          while (!got) {
            select(on_recv(in, [&](std::optional<long> x) {
                     v = x;
                     got = true;
                   }),
                   on_timeout(1ms, [] {}));
          }
          out.send(*v);
          t.sent++;
        }
        if (v) t.received++;
      }
      wg.done();
    });
  }
  wg.wait();
}

// contention: goroutines increment a counter under one Mutex, some of them yielding inside.
void contention(Tally& t, int n, int each) {
  Mutex mu;
  WaitGroup wg;
  wg.add(n);
  for (int i = 0; i < n; i++)
    go([&, i] {
      for (int k = 0; k < each; k++) {
        std::lock_guard<Mutex> lk(mu);
        t.counter++;
        if ((k + i) % 17 == 0) yield();
      }
      t.locked += each;
      wg.done();
    });
  wg.wait();
}

// sockets: pairs of goroutines echo random-size messages over loopback TCP.
void sockets(Tally& t, Rng rng, int pairs) {
  auto [ln, err] = net::listen("tcp4", "127.0.0.1:0");
  if (err) return;
  std::string addr = "127.0.0.1:" + std::to_string(ln.addr().port());
  WaitGroup wg;
  wg.add(2 * pairs);
  for (int i = 0; i < pairs; i++) {
    go([&] {
      auto [c, e] = ln.accept();
      char buf[2048];
      while (!e) {
        auto r = c.read(buf, sizeof buf);
        if (r.n) c.write(buf, r.n);
        if (r.err) break;
      }
      c.close();
      wg.done();
    });
    Rng r2{rng.next()};
    go([&, r2]() mutable {
      auto [c, e] = net::dial("tcp", addr);
      if (!e) {
        std::string msg(1 + r2.below(1500), char('a' + r2.below(26)));
        for (int k = 0; k < 5; k++) {
          if (c.write(msg).err) break;
          t.bytes_out += long(msg.size());
          std::string back(msg.size(), '\0');
          auto rr = c.read_full(back.data(), back.size());
          if (rr.err || back != msg) break;
          t.bytes_in += long(rr.n);
        }
      }
      c.close();
      wg.done();
    });
  }
  wg.wait();
  ln.close();
}

class Stress : public ::testing::TestWithParam<int> {};

TEST_P(Stress, RandomStormsKeepEveryCount) {
  Config cfg;
  cfg.procs = GetParam();
  cfg.time_slice = 2ms;  // preemption happens often
  Tally t;
  long rounds = 0, ring_tokens = 0, locks = 0;
  auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(stress_seconds()));
  run([&] {
    Rng rng{std::uint64_t(GetParam()) * 7919};
    while (Clock::now() < until) {
      WaitGroup storms;
      int ring_n = 2 + int(rng.below(6)), laps = 20 + int(rng.below(50));
      int mu_n = 2 + int(rng.below(8)), mu_each = 200;
      ring_tokens += long(ring_n) * laps;
      locks += long(mu_n) * mu_each;
      storms.add(4);
      Rng a{rng.next()}, b{rng.next()}, c{rng.next()};
      WaitGroup tree_wg;
      go([&, a] { tree(t, a, int(testing::scaled(5)), tree_wg); tree_wg.wait(); storms.done(); });
      go([&, b] { ring(t, b, ring_n, laps); storms.done(); });
      go([&] { contention(t, mu_n, mu_each); storms.done(); });
      int socket_pairs = 1 + int(c.below(8));
      go([&, c, socket_pairs] { sockets(t, c, socket_pairs); storms.done(); });
      storms.wait();
      rounds++;
    }
  }, cfg);
  RecordProperty("rounds", std::to_string(rounds));
  std::printf("procs=%d: %ld rounds, %ld goroutines in trees, %ld ring hops, %ld locks, %ld socket bytes\n",
              GetParam(), rounds, t.spawned.load(), t.sent.load(), t.locked.load(), t.bytes_in.load());
  EXPECT_GT(rounds, 0);
  EXPECT_EQ(t.spawned.load(), t.finished.load());
  EXPECT_EQ(t.sent.load(), ring_tokens);
  EXPECT_EQ(t.received.load(), ring_tokens);
  EXPECT_EQ(t.counter, locks);
  EXPECT_EQ(t.locked.load(), locks);
  EXPECT_EQ(t.bytes_in.load(), t.bytes_out.load());
}

INSTANTIATE_TEST_SUITE_P(Procs, Stress, ::testing::Values(1, 2, 3, 4));

}  // namespace
}  // namespace mpg
