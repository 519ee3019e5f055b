// select_test.cpp: select's invariants (Go's select tests, in spirit): exactly one case fires
// and its index is returned, uniform choice among ready cases, default and timeout, nil and
// closed channels, and conservation of values under many concurrent selectors.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "mpg/mpg.hpp"
#include "runtime/test_util.hpp"

using namespace std::chrono_literals;
using mpg::testing::max_live;
using mpg::testing::scaled;
using mpg::testing::Rng;
using mpg::testing::wait_waiting;
using mpg::testing::under_sanitizer;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kProcs[] = {1, 2, 4};

// slack: how late a timed wake-up may be (sanitizers slow everything down).
Clock::duration slack() { return under_sanitizer() ? 1000ms : 200ms; }

// Invariant: with every case ready, select runs exactly one callback, returns that case's
// index, receives that channel's value, and leaves the other channels untouched.
TEST(Select, FiresExactlyOneCaseAndReturnsItsIndex) {
  for (int procs : kProcs) {
    int bad = 0;
    mpg::run(
        [&] {
          mpg::Chan<int> a(1), b(1), c(1), out(1);
          for (int trial = 0; trial < 1000; trial++) {
            if (a.len() == 0) a.send(1000000 + trial);
            if (b.len() == 0) b.send(2000000 + trial);
            if (c.len() == 0) c.send(3000000 + trial);
            while (out.try_recv()) {
            }
            std::array<int, 4> fired{};
            std::optional<int> got;
            std::size_t la = a.len(), lb = b.len(), lc = c.len();
            int idx = mpg::select(mpg::on_recv(a, [&](std::optional<int> v) { fired[0]++, got = v; }),
                                  mpg::on_recv(b, [&](std::optional<int> v) { fired[1]++, got = v; }),
                                  mpg::on_send(out, trial, [&] { fired[2]++; }),
                                  mpg::on_recv(c, [&](std::optional<int> v) { fired[3]++, got = v; }));
            int total = fired[0] + fired[1] + fired[2] + fired[3];
            if (total != 1 || idx < 0 || idx > 3 || fired[std::size_t(idx)] != 1) {
              bad++;
              continue;
            }
            // The chosen channel moved; the others did not.
            std::size_t want_a = la - (idx == 0), want_b = lb - (idx == 1), want_c = lc - (idx == 3);
            if (a.len() != want_a || b.len() != want_b || c.len() != want_c) bad++;
            if (idx == 2) {
              if (got || out.len() != 1) bad++;
            } else if (!got || *got / 1000000 != (idx == 3 ? 3 : idx + 1)) {
              bad++;
            }
          }
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(bad, 0) << "procs=" << procs;
  }
}

// Invariant: when several cases are ready, each is chosen a fair share of the time (Go picks
// uniformly at random); no case is starved or favoured by its position.
TEST(Select, RandomChoiceAmongReadyCases) {
  const int trials = 20000;
  for (int procs : {1, 2}) {
    std::array<int, 5> count{};
    mpg::run(
        [&] {
          mpg::Chan<int> c0(1), c1(1), c2(1), c3(1), sink(1);
          for (int t = 0; t < trials; t++) {
            for (auto* c : {&c0, &c1, &c2, &c3})
              if (c->len() == 0) c->send(t);
            while (sink.try_recv()) {
            }
            int idx = mpg::select(mpg::on_recv(c0, [](std::optional<int>) {}), mpg::on_recv(c1, [](std::optional<int>) {}),
                                  mpg::on_recv(c2, [](std::optional<int>) {}), mpg::on_send(sink, t, [] {}),
                                  mpg::on_recv(c3, [](std::optional<int>) {}));
            count[std::size_t(idx)]++;
          }
        },
        mpg::Config{.procs = procs});
    for (int i = 0; i < 5; i++) {
      // Expected share 0.2 (sigma ~0.003): [0.15, 0.25] only fails for a biased choice.
      EXPECT_GT(count[std::size_t(i)], trials * 15 / 100) << "case " << i << " procs=" << procs;
      EXPECT_LT(count[std::size_t(i)], trials * 25 / 100) << "case " << i << " procs=" << procs;
    }
  }
}

// Invariant: with nothing ready, the default case runs at once and no channel changes; with a
// case ready, default never runs.
TEST(Select, DefaultWhenNothingReady) {
  for (int procs : {1, 2}) {
    int defaults = 0, others = 0, ready_defaults = 0;
    mpg::run(
        [&] {
          mpg::Chan<int> empty(4), unbuf, full(1);
          full.send(7);
          auto t0 = Clock::now();
          for (int i = 0; i < 1000; i++) {
            int idx = mpg::select(mpg::on_recv(empty, [&](std::optional<int>) { others++; }),
                                  mpg::on_recv(unbuf, [&](std::optional<int>) { others++; }),
                                  mpg::on_send(full, i, [&] { others++; }),
                                  mpg::on_send(unbuf, i, [&] { others++; }),
                                  mpg::on_default([&] { defaults++; }));
            if (idx != 4) others++;
          }
          EXPECT_LT(Clock::now() - t0, slack());  // never blocked
          EXPECT_EQ(empty.len(), 0u);
          EXPECT_EQ(full.len(), 1u);
          EXPECT_EQ(full.recv(), std::optional<int>(7));
          // Ready: the buffered channel has a value in every round.
          for (int i = 0; i < 1000; i++) {
            empty.send(i);
            int idx = mpg::select(mpg::on_recv(empty, [](std::optional<int>) {}), mpg::on_default([&] { ready_defaults++; }));
            if (idx != 0) ready_defaults++;
          }
          // A timeout of zero behaves as default.
          int idx = mpg::select(mpg::on_recv(unbuf, [&](std::optional<int>) { others++; }), mpg::on_timeout(0ms, [] {}));
          EXPECT_EQ(idx, 1);
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(defaults, 1000) << "procs=" << procs;
    EXPECT_EQ(others, 0) << "procs=" << procs;
    EXPECT_EQ(ready_defaults, 0) << "procs=" << procs;
  }
}

// Invariant: with nothing ready, on_timeout(d) fires once, no earlier than d and not absurdly
// later; with several timeouts the shortest wins.
TEST(Select, TimeoutFiresAfterAboutTheDuration) {
  for (int procs : {1, 2}) {
    mpg::run(
        [&] {
          mpg::Chan<int> c;
          int fired = 0;
          auto t0 = Clock::now();
          int idx = mpg::select(mpg::on_recv(c, [&](std::optional<int>) { fired += 100; }),
                                mpg::on_timeout(20ms, [&] { fired++; }));
          auto dt = Clock::now() - t0;
          EXPECT_EQ(idx, 1);
          EXPECT_EQ(fired, 1);
          EXPECT_GE(dt, 20ms);
          EXPECT_LT(dt, 20ms + slack());

          int which = -1;
          t0 = Clock::now();
          idx = mpg::select(mpg::on_timeout(300ms, [&] { which = 0; }), mpg::on_recv(c, [&](std::optional<int>) { which = 1; }),
                            mpg::on_timeout(10ms, [&] { which = 2; }));
          dt = Clock::now() - t0;
          EXPECT_EQ(idx, 2);
          EXPECT_EQ(which, 2);
          EXPECT_GE(dt, 10ms);
          EXPECT_LT(dt, 300ms);

          // Only a timeout (no channel case, or only nil ones): it sleeps.
          t0 = Clock::now();
          idx = mpg::select(mpg::on_recv(mpg::Chan<int>(nullptr), [&](std::optional<int>) { which = 9; }),
                            mpg::on_timeout(15ms, [&] { which = 3; }));
          dt = Clock::now() - t0;
          EXPECT_EQ(idx, 1);
          EXPECT_EQ(which, 3);
          EXPECT_GE(dt, 15ms);
          EXPECT_LT(dt, 15ms + slack());
        },
        mpg::Config{.procs = procs});
  }
}

// Invariant: when a channel becomes ready before the timeout, the channel's case wins and the
// abandoned timeout never fires later: exactly one callback per select, every value received
// once and in order, and a later sleep_for is never cut short by a stale select timer.
TEST(Select, ReadyBeforeTimeoutWinsAndTimeoutNeverFiresLater) {
  const int iters = int(scaled(400) < 100 ? 100 : scaled(400));
  for (int procs : kProcs) {
    int recv_wins = 0, timeouts = 0, extra = 0, order_bad = 0, short_sleeps = 0;
    mpg::run(
        [&] {
          mpg::Chan<int> c;
          mpg::WaitGroup wg;
          Rng r{std::uint64_t(procs) * 77};
          int expect = 0;
          for (int i = 0; i < iters; i++) {
            auto d = std::chrono::microseconds(100 + r.below(400));      // the select's timeout
            auto delay = std::chrono::microseconds(r.below(600));         // the sender's delay
            wg.add(1);
            mpg::go([&, i, delay] {
              if (delay.count() > 50) mpg::sleep_for(delay);
              else mpg::yield();
              c.send(i);
              wg.done();
            });
            int fired = 0;
            std::optional<int> got;
            int idx = mpg::select(mpg::on_recv(c, [&](std::optional<int> v) { fired++, got = v; }),
                                  mpg::on_timeout(d, [&] { fired++; }));
            if (fired != 1) extra++;
            if (idx == 0) {
              recv_wins++;
            } else {
              timeouts++;
              got = c.recv();  // the sender still waits: its value must not be lost
            }
            if (!got || *got != expect) order_bad++;
            expect++;
            wg.wait();
            // A stale timer of this select must not end this sleep early.
            auto t0 = Clock::now();
            mpg::sleep_for(d);
            if (Clock::now() - t0 < d) short_sleeps++;
          }
          // And not a longer one either.
          for (int k = 0; k < 5; k++) {
            auto t0 = Clock::now();
            mpg::sleep_for(2ms);
            if (Clock::now() - t0 < 2ms) short_sleeps++;
          }
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(extra, 0) << "procs=" << procs;
    EXPECT_EQ(order_bad, 0) << "procs=" << procs;
    EXPECT_EQ(short_sleeps, 0) << "procs=" << procs;
    EXPECT_EQ(recv_wins + timeouts, iters);
    EXPECT_GT(recv_wins, 0) << "procs=" << procs;  // both outcomes happen, or the race was not run
    EXPECT_GT(timeouts, 0) << "procs=" << procs;
  }
}

// Invariant: a select parked on several channels completes exactly one of them even when all
// become ready at once; the senders that lost stay parked with their values intact.
TEST(Select, ParkedSelectCompletesExactlyOneOfSimultaneousSenders) {
  const int rounds = int(scaled(2000) < 200 ? 200 : scaled(2000));
  for (int procs : kProcs) {
    int bad = 0;
    mpg::run(
        [&] {
          mpg::Chan<int> a, b, c;
          mpg::WaitGroup wg;
          for (int r = 0; r < rounds; r++) {
            wg.add(3);
            mpg::go([&, r] { a.send(3 * r), wg.done(); });
            mpg::go([&, r] { b.send(3 * r + 1), wg.done(); });
            mpg::go([&, r] { c.send(3 * r + 2), wg.done(); });
            int fired = 0;
            std::optional<int> got;
            int idx = mpg::select(mpg::on_recv(a, [&](std::optional<int> v) { fired++, got = v; }),
                                  mpg::on_recv(b, [&](std::optional<int> v) { fired++, got = v; }),
                                  mpg::on_recv(c, [&](std::optional<int> v) { fired++, got = v; }));
            if (fired != 1 || !got || *got != 3 * r + idx) bad++;
            // The two others are still there, exactly once each.
            std::array<mpg::Chan<int>*, 3> chans{&a, &b, &c};
            for (int k = 0; k < 3; k++) {
              if (k == idx) continue;
              auto v = chans[std::size_t(k)]->recv();
              if (!v || *v != 3 * r + k) bad++;
            }
            wg.wait();
            for (auto* ch : chans)
              if (ch->try_recv()) bad++;
          }
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(bad, 0) << "procs=" << procs;
  }
}

// Invariant: a channel named in two recv cases of one select still completes only one of them
// per select (the second Sudog is skipped and unlinked): every value is received exactly once.
TEST(Select, SameChannelInTwoCasesFiresOnce) {
  const int n = int(scaled(20000) < 2000 ? 2000 : scaled(20000));
  for (int procs : kProcs) {
    long fired = 0, sum = 0, bad = 0;
    mpg::run(
        [&] {
          mpg::Chan<int> c, other;
          mpg::WaitGroup wg;
          wg.add(1);
          mpg::go([&] {
            for (int i = 1; i <= n; i++) c.send(i);
            wg.done();
          });
          for (int i = 1; i <= n; i++) {
            int f = 0;
            int got = 0;
            auto take = [&](std::optional<int> v) { f++, got = v ? *v : -1; };
            mpg::select(mpg::on_recv(c, take), mpg::on_recv(other, take), mpg::on_recv(c, take));
            if (f != 1 || got != i) bad++;
            fired += f;
            sum += got;
          }
          wg.wait();
          if (c.try_recv()) bad++;
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(bad, 0) << "procs=" << procs;
    EXPECT_EQ(fired, n) << "procs=" << procs;
    EXPECT_EQ(sum, long(n) * (n + 1) / 2) << "procs=" << procs;
  }
}

// Invariant: send and recv cases on the same channel: on a buffer of one, exactly the case that
// can proceed fires (send when empty, recv when full), and the values round-trip; a lone select
// never pairs with itself on an unbuffered channel; two such selectors pair with each other.
TEST(Select, SendAndRecvOnTheSameChannel) {
  for (int procs : kProcs) {
    int bad = 0, self_paired = 0;
    long sends = 0, recvs = 0, sum_sent = 0, sum_recv = 0;
    mpg::run(
        [&] {
          mpg::Chan<int> c(1);
          for (int i = 0; i < 1000; i++) {
            std::optional<int> got;
            int idx = mpg::select(mpg::on_recv(c, [&](std::optional<int> v) { got = v; }), mpg::on_send(c, i, [] {}));
            if (idx != (i % 2 == 0 ? 1 : 0)) bad++;
            if (idx == 0 && (!got || *got != i - 1)) bad++;
          }
          mpg::Chan<int> u;
          int idx = mpg::select(mpg::on_send(u, 1, [] {}), mpg::on_recv(u, [](std::optional<int>) {}),
                                mpg::on_timeout(5ms, [] {}));
          if (idx != 2) self_paired++;

          const int n = int(scaled(5000) < 500 ? 500 : scaled(5000));
          std::atomic<long> s{0}, rcv{0}, ss{0}, sr{0};
          mpg::WaitGroup wg;
          for (int who = 0; who < 2; who++) {
            wg.add(1);
            mpg::go([&, who] {
              for (int i = 0; i < n; i++) {
                int v = who * 1000000 + i;
                mpg::select(mpg::on_send(u, v, [&] { s++, ss += v; }), mpg::on_recv(u, [&](std::optional<int> x) {
                              rcv++;
                              if (x) sr += *x;
                            }));
              }
              wg.done();
            });
          }
          wg.wait();
          sends = s, recvs = rcv, sum_sent = ss, sum_recv = sr;
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(bad, 0) << "procs=" << procs;
    EXPECT_EQ(self_paired, 0) << "procs=" << procs;
    EXPECT_EQ(sends, recvs) << "procs=" << procs;
    EXPECT_EQ(sends + recvs, 2 * long(scaled(5000) < 500 ? 500 : scaled(5000))) << "procs=" << procs;
    EXPECT_EQ(sum_sent, sum_recv) << "procs=" << procs;
  }
}

// Invariant: a closed channel's recv case is always ready and fires with nullopt (after the
// buffer drains), also waking a select already parked on it; a send case on a closed channel
// throws ClosedChannel, also for a select parked on it when it closes.
TEST(Select, ClosedChannelRecvFiresWithNullopt) {
  for (int procs : kProcs) {
    int bad = 0, woken_nullopt = 0, send_threw = 0, parked_send_threw = 0;
    mpg::run(
        [&] {
          mpg::Chan<int> c(2), never;
          c.send(1);
          c.close();
          std::vector<std::optional<int>> seen;
          for (int i = 0; i < 3; i++) {
            int idx = mpg::select(mpg::on_recv(never, [&](std::optional<int>) { bad++; }),
                                  mpg::on_recv(c, [&](std::optional<int> v) { seen.push_back(v); }),
                                  mpg::on_timeout(1s, [&] { bad++; }));
            if (idx != 1) bad++;
          }
          if (seen != std::vector<std::optional<int>>{1, std::nullopt, std::nullopt}) bad++;

          try {
            mpg::select(mpg::on_send(c, 5, [&] { bad++; }), mpg::on_default([&] { bad++; }));
          } catch (const mpg::ClosedChannel&) {
            send_threw++;
          }

          // Parked selects woken by close.
          mpg::Chan<int> d, e;
          mpg::WaitGroup wg;
          const int n = 50;
          std::atomic<int> nul{0}, threw{0};
          for (int i = 0; i < n; i++) {
            wg.add(1);
            mpg::go([&, i] {
              try {
                if (i % 2 == 0) {
                  mpg::select(mpg::on_recv(d, [&](std::optional<int> v) { nul += v ? 100 : 1; }),
                              mpg::on_recv(never, [&](std::optional<int>) { nul += 100; }));
                } else {
                  mpg::select(mpg::on_send(e, i, [&] { nul += 100; }), mpg::on_recv(never, [&](std::optional<int>) { nul += 100; }));
                }
              } catch (const mpg::ClosedChannel&) {
                threw++;
              }
              wg.done();
            });
          }
          if (!wait_waiting(n)) bad++;
          d.close();
          e.close();
          wg.wait();
          woken_nullopt = nul;
          parked_send_threw = threw;
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(bad, 0) << "procs=" << procs;
    EXPECT_EQ(send_threw, 1) << "procs=" << procs;
    EXPECT_EQ(woken_nullopt, 25) << "procs=" << procs;
    EXPECT_EQ(parked_send_threw, 25) << "procs=" << procs;
  }
}

// Invariant: cases on the nil channel never fire: with a ready real case it always wins; with
// only nil cases, default or timeout fires.
TEST(Select, NilChannelCasesNeverFire) {
  for (int procs : {1, 2}) {
    int nil_fired = 0, other = 0;
    mpg::run(
        [&] {
          mpg::Chan<int> nil(nullptr), real(1);
          for (int i = 0; i < 1000; i++) {
            real.send(i);
            int idx = mpg::select(mpg::on_recv(nil, [&](std::optional<int>) { nil_fired++; }),
                                  mpg::on_send(nil, i, [&] { nil_fired++; }),
                                  mpg::on_recv(real, [&](std::optional<int> v) {
                                    if (!v || *v != i) other++;
                                  }));
            if (idx != 2) other++;
          }
          int idx = mpg::select(mpg::on_recv(nil, [&](std::optional<int>) { nil_fired++; }),
                                mpg::on_send(nil, 1, [&] { nil_fired++; }), mpg::on_default([] {}));
          if (idx != 2) other++;
          auto t0 = Clock::now();
          idx = mpg::select(mpg::on_recv(nil, [&](std::optional<int>) { nil_fired++; }),
                            mpg::on_send(nil, 1, [&] { nil_fired++; }), mpg::on_timeout(5ms, [] {}));
          if (idx != 2 || Clock::now() - t0 < 5ms) other++;
          // A parked select with a nil case is woken by its real case.
          mpg::Chan<int> u;
          mpg::WaitGroup wg;
          wg.add(1);
          mpg::go([&] {
            mpg::sleep_for(1ms);
            u.send(5);
            wg.done();
          });
          idx = mpg::select(mpg::on_recv(nil, [&](std::optional<int>) { nil_fired++; }),
                            mpg::on_recv(u, [&](std::optional<int> v) {
                              if (v != std::optional<int>(5)) other++;
                            }));
          if (idx != 1) other++;
          wg.wait();
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(nil_fired, 0) << "procs=" << procs;
    EXPECT_EQ(other, 0) << "procs=" << procs;
  }
}

// Tracked: live-object count and double-destroy canary for elements moved through select.
struct Tracked {
  static inline std::atomic<long> live{0}, bad{0};
  std::uint32_t canary = 0xA11CE;
  int v = 0;
  explicit Tracked(int x) : v(x) { live++; }
  Tracked(const Tracked& o) : v(o.v) {
    if (o.canary != 0xA11CE) bad++;
    live++;
  }
  Tracked(Tracked&& o) noexcept : v(o.v) {
    if (o.canary != 0xA11CE) bad++;
    live++;
  }
  Tracked& operator=(const Tracked&) = delete;
  ~Tracked() {
    if (canary != 0xA11CE) bad++;
    canary = 0xDEAD;
    live--;
  }
};

// Invariant: a select's values are constructed and destroyed exactly once: the send value of a
// case that did not fire is destroyed with the select, the one that fired lives on in the
// channel, and received values are handed to the callback once.
TEST(Select, ElementLifetimes) {
  for (int procs : kProcs) {
    Tracked::live = 0;
    Tracked::bad = 0;
    long sum = 0;
    mpg::run(
        [&] {
          mpg::Chan<Tracked> a, b(1);
          mpg::WaitGroup wg;
          const int n = 2000;
          wg.add(1);
          mpg::go([&] {
            for (int i = 0; i < n; i++) {
              mpg::select(mpg::on_send(a, Tracked(i), [] {}), mpg::on_send(b, Tracked(i), [] {}));
            }
            a.close();
            b.close();
            wg.done();
          });
          bool a_open = true, b_open = true;
          mpg::Chan<Tracked> na = a, nb = b;
          while (a_open || b_open) {
            mpg::select(mpg::on_recv(na, [&](std::optional<Tracked> t) {
                          if (t) sum += t->v;
                          else a_open = false, na = mpg::Chan<Tracked>(nullptr);
                        }),
                        mpg::on_recv(nb, [&](std::optional<Tracked> t) {
                          if (t) sum += t->v;
                          else b_open = false, nb = mpg::Chan<Tracked>(nullptr);
                        }));
          }
          wg.wait();
          // Leftover buffered value, dropped with the channel.
          mpg::Chan<Tracked> left(1);
          mpg::select(mpg::on_send(left, Tracked(1), [] {}), mpg::on_default([] {}));
          EXPECT_EQ(left.len(), 1u);
        },
        mpg::Config{.procs = procs});
    EXPECT_EQ(sum, 2000L * 1999 / 2) << "procs=" << procs;
    EXPECT_EQ(Tracked::live.load(), 0) << "procs=" << procs;
    EXPECT_EQ(Tracked::bad.load(), 0) << "procs=" << procs;
  }
}

// Invariant: conservation under many concurrent selectors: senders each push a disjoint id
// range through selects over four shared channels (mixed capacities; some with default or
// timeout retries), receivers select over all four until each is closed and drained; every id
// is received exactly once and every fired send callback matches one received value.
TEST(Select, ManySelectorsConserveValues) {
  const int goroutines = int(max_live(200));
  const int senders = goroutines / 2, receivers = goroutines - senders;
  const int per = int(scaled(100000)) / senders + 1;
  for (int procs : kProcs) {
    const int total = senders * per;
    std::vector<std::atomic<std::uint8_t>> seen(static_cast<std::size_t>(total));
    std::atomic<long> send_cbs{0}, recv_cbs{0}, bad{0};
    mpg::run(
        [&] {
          std::array<mpg::Chan<int>, 4> ch{mpg::Chan<int>(0), mpg::Chan<int>(1), mpg::Chan<int>(8), mpg::Chan<int>(0)};
          mpg::WaitGroup sent, received;
          for (int s = 0; s < senders; s++) {
            sent.add(1);
            mpg::go([&, s] {
              for (int k = 0; k < per; k++) {
                int id = s * per + k;
                bool done = false;
                while (!done) {
                  auto on_sent = [&] { send_cbs++, done = true; };
                  switch (s % 3) {
                    case 0:
                      mpg::select(mpg::on_send(ch[0], id, on_sent), mpg::on_send(ch[1], id, on_sent),
                                  mpg::on_send(ch[2], id, on_sent), mpg::on_send(ch[3], id, on_sent));
                      break;
                    case 1:
                      mpg::select(mpg::on_send(ch[0], id, on_sent), mpg::on_send(ch[2], id, on_sent),
                                  mpg::on_default([] { mpg::yield(); }));
                      break;
                    default:
                      mpg::select(mpg::on_send(ch[3], id, on_sent), mpg::on_send(ch[1], id, on_sent),
                                  mpg::on_timeout(50us, [] {}));
                  }
                }
              }
              sent.done();
            });
          }
          for (int r = 0; r < receivers; r++) {
            received.add(1);
            mpg::go([&] {
              std::array<mpg::Chan<int>, 4> mine = ch;
              int open = 4;
              auto take = [&](int j) {
                return [&, j](std::optional<int> v) {
                  if (!v) {
                    mine[std::size_t(j)] = mpg::Chan<int>(nullptr);
                    open--;
                    return;
                  }
                  recv_cbs++;
                  if (*v < 0 || *v >= total) {
                    bad++;
                    return;
                  }
                  seen[std::size_t(*v)].fetch_add(1, std::memory_order_relaxed);
                };
              };
              while (open > 0)
                mpg::select(mpg::on_recv(mine[0], take(0)), mpg::on_recv(mine[1], take(1)), mpg::on_recv(mine[2], take(2)),
                            mpg::on_recv(mine[3], take(3)));
              received.done();
            });
          }
          sent.wait();
          for (auto& c : ch) c.close();
          received.wait();
        },
        mpg::Config{.procs = procs});
    long lost = 0, dup = 0;
    for (int i = 0; i < total; i++) {
      auto v = seen[std::size_t(i)].load();
      lost += v == 0;
      dup += v > 1;
    }
    EXPECT_EQ(lost, 0) << "procs=" << procs;
    EXPECT_EQ(dup, 0) << "procs=" << procs;
    EXPECT_EQ(bad.load(), 0) << "procs=" << procs;
    EXPECT_EQ(send_cbs.load(), total) << "procs=" << procs;
    EXPECT_EQ(recv_cbs.load(), total) << "procs=" << procs;
  }
}

}  // namespace
