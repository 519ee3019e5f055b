// mpg_micro_bench: mpg's micro-benchmarks, the same cases as the Go peer (bench/peers/micro)
// and the Boost.Fiber twin (bench/fiber_bench.cpp); tools/bench.py runs all three in one run.
//
// Every case runs inside its own mpg::run with the procs the case names, and reports the user
// counter "ns_per_op" (or "value" for non-time results), which the driver reads:
//   mpg/spawn_wait_1e6          spawn 1e6 empty goroutines + WaitGroup; ns per goroutine
//   mpg/yield_pingpong_p1       two goroutines calling mpg::yield at procs=1; ns per yield
//   mpg/chan_unbuf_pingpong_p1  an int bouncing over two unbuffered channels; ns per round trip
//   mpg/chan_unbuf_pingpong_p2  the same at procs=2
//   mpg/chan_unbuf_pingpong_p1_timer  the p1 case with a timer pending an hour away, as a server
//                               with a deadline on every connection always has: what the
//                               scheduler's "is a timer due?" check costs per switch
//   mpg/chan_buf1024_p2         1 producer, 1 consumer, capacity 1024, procs=2; ns per message
//   mpg/mutex_4_p2              4 goroutines lock/unlock one Mutex at procs=2; ns per pair
//   mpg/rss_parked_1e5          RSS growth per goroutine parked on a channel (value, bytes)
//   mpg/skynet_1e6              the skynet tree of 1e6 leaf goroutines (value, ms)
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <optional>

#include "mpg/mpg.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double ns_since(Clock::time_point t0) {
  return double(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
}

void report(benchmark::State& st, double total_ns, double ops) {
  st.counters["ns_per_op"] = benchmark::Counter(total_ns / ops);
}

void BM_spawn_wait(benchmark::State& st) {
  constexpr int kN = 1'000'000;
  double total = 0, ops = 0;
  mpg::run([&] {
    auto round = [] {
      mpg::WaitGroup wg;
      wg.add(kN);
      for (int i = 0; i < kN; i++) mpg::go([&wg] { wg.done(); });
      wg.wait();
    };
    round();  // warm-up, untimed (the Go peer warms up too): the first round faults stacks in
    for (auto _ : st) {
      auto t0 = Clock::now();
      round();
      total += ns_since(t0);
      ops += kN;
    }
  });
  report(st, total, ops);
}

void BM_yield_pingpong(benchmark::State& st) {
  double total = 0, ops = 0;
  mpg::run(
      [&] {
        std::atomic<bool> stop{false};
        mpg::WaitGroup wg;
        wg.add(1);
        mpg::go([&] {
          while (!stop.load(std::memory_order_relaxed)) mpg::yield();
          wg.done();
        });
        mpg::yield();
        auto t0 = Clock::now();
        std::int64_t n = 0;
        for (auto _ : st) {
          mpg::yield();
          n++;
        }
        total = ns_since(t0);
        ops = 2.0 * double(n);  // both goroutines yield once per round
        stop = true;
        wg.wait();
      },
      mpg::Config{.procs = 1});
  report(st, total, ops);
}

template <int Procs, bool FarTimer = false>
void BM_chan_pingpong(benchmark::State& st) {
  double total = 0, ops = 0;
  mpg::run(
      [&] {
        std::optional<mpg::Timer> far;
        if (FarTimer) far.emplace(std::chrono::hours(1));
        mpg::Chan<int> ping, pong;
        mpg::go([=]() mutable {
          while (auto v = ping.recv()) pong.send(*v);
          pong.close();
        });
        auto t0 = Clock::now();
        std::int64_t n = 0;
        for (auto _ : st) {
          ping.send(1);
          benchmark::DoNotOptimize(pong.recv());
          n++;
        }
        total = ns_since(t0);
        ops = double(n);
        ping.close();
        pong.recv();
      },
      mpg::Config{.procs = Procs});
  report(st, total, ops);
}

void BM_chan_buffered(benchmark::State& st) {
  double total = 0, ops = 0;
  mpg::run(
      [&] {
        mpg::Chan<std::int64_t> ch(1024);
        mpg::Chan<std::int64_t> done;
        mpg::go([=]() mutable {
          std::int64_t sum = 0;
          while (auto v = ch.recv()) sum += *v;
          done.send(sum);
        });
        auto t0 = Clock::now();
        std::int64_t n = 0;
        for (auto _ : st) ch.send(n++);
        ch.close();
        auto sum = done.recv();
        total = ns_since(t0);
        ops = double(n);
        if (!sum || *sum != n * (n - 1) / 2) st.SkipWithError("buffered channel lost messages");
      },
      mpg::Config{.procs = 2});
  report(st, total, ops);
}

void BM_mutex(benchmark::State& st) {
  constexpr int kPer = 250'000, kG = 4;
  double total = 0, ops = 0;
  mpg::run(
      [&] {
        for (auto _ : st) {
          mpg::Mutex mu;
          std::int64_t counter = 0;
          mpg::WaitGroup wg;
          wg.add(kG);
          auto t0 = Clock::now();
          for (int g = 0; g < kG; g++)
            mpg::go([&] {
              for (int i = 0; i < kPer; i++) {
                mu.lock();
                counter++;
                mu.unlock();
              }
              wg.done();
            });
          wg.wait();
          total += ns_since(t0);
          ops += kPer * kG;
          if (counter != kPer * kG) st.SkipWithError("mutex lost increments");
        }
      },
      mpg::Config{.procs = 2});
  report(st, total, ops);
}

long rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f) {
    if (std::fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    std::fclose(f);
  }
  return rss * sysconf(_SC_PAGESIZE);
}

void BM_rss_parked(benchmark::State& st) {
  constexpr int kN = 100'000;
  double per = 0;
  for (auto _ : st) {
    mpg::run([&] {
      mpg::Chan<int> block;
      mpg::WaitGroup started, finished;
      long before = rss_bytes();
      started.add(kN);
      finished.add(kN);
      for (int i = 0; i < kN; i++)
        mpg::go([&, block]() mutable {
          started.done();
          block.recv();
          finished.done();
        });
      started.wait();
      mpg::sleep_for(std::chrono::milliseconds(10));  // let every goroutine reach its park
      long after = rss_bytes();
      per = double(after - before) / kN;
      block.close();
      finished.wait();
    });
  }
  st.counters["value"] = benchmark::Counter(per);
  st.counters["bytes_per_goroutine"] = benchmark::Counter(per);
}

void skynet(mpg::Chan<std::int64_t> out, std::int64_t num, std::int64_t size, std::int64_t div) {
  if (size == 1) {
    out.send(num);
    return;
  }
  mpg::Chan<std::int64_t> rc;  // unbuffered, as the Go peer
  for (std::int64_t i = 0; i < div; i++) {
    std::int64_t sub = num + i * (size / div);
    mpg::go([rc, sub, size, div] { skynet(rc, sub, size / div, div); });
  }
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < div; i++) sum += *rc.recv();
  out.send(sum);
}

void BM_skynet(benchmark::State& st) {
  double ms = 0, runs = 0;
  mpg::run(
      [&] {
        for (auto _ : st) {
          auto t0 = Clock::now();
          mpg::Chan<std::int64_t> out;
          mpg::go([out] { skynet(out, 0, 1'000'000, 10); });
          auto sum = out.recv();
          ms += ns_since(t0) / 1e6;
          runs++;
          if (!sum || *sum != 499999500000) st.SkipWithError("skynet: wrong sum");
        }
      },
      mpg::Config{.procs = 2});
  st.counters["value"] = benchmark::Counter(ms / runs);
  st.counters["ms"] = benchmark::Counter(ms / runs);
}

}  // namespace

BENCHMARK(BM_spawn_wait)->Name("mpg/spawn_wait_1e6")->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_yield_pingpong)->Name("mpg/yield_pingpong_p1")->UseRealTime();
BENCHMARK_TEMPLATE(BM_chan_pingpong, 1)->Name("mpg/chan_unbuf_pingpong_p1")->UseRealTime();
BENCHMARK_TEMPLATE(BM_chan_pingpong, 2)->Name("mpg/chan_unbuf_pingpong_p2")->UseRealTime();
BENCHMARK_TEMPLATE(BM_chan_pingpong, 1, true)->Name("mpg/chan_unbuf_pingpong_p1_timer")->UseRealTime();
BENCHMARK(BM_chan_buffered)->Name("mpg/chan_buf1024_p2")->UseRealTime();
BENCHMARK(BM_mutex)->Name("mpg/mutex_4_p2")->Iterations(4)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_rss_parked)->Name("mpg/rss_parked_1e5")->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_skynet)->Name("mpg/skynet_1e6")->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
