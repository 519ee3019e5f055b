// mpg_kit_bench: what each piece of the production kit costs on a request's hot path
// (docs/kit.md). Cases run on 1 and 2 threads (this machine's cores); with 2, both threads hit
// the same object, as two loops or two Ms of one server would.
//
//   clock/steady_now             steady_clock::now(): what every timed piece pays per read
//   bucket/take                  the lock-free server bucket, admitting (rate never reached)
//   bucket/refuse                the same bucket when empty: read-only
//   clients/take_one_ip          the per-client table, one client (hot set)
//   clients/take_64k_ips         64 Ki clients in a 64 Ki table, cycling (cache misses)
//   limiter/check                RateLimiter::check with a server and a per-client limit
//   slots/acquire_release        the concurrency limiter's slot, taken and given back
//   breaker/closed_call          CircuitBreaker: admit + report success while closed
//   breaker/open_refuse          ... refused while open (lock-free)
//   counter/striped_inc          kit::Counter::inc
//   counter/shared_atomic_inc    the peer: one std::atomic fetch_add shared by all threads
//   gauge/inc_dec                kit::Gauge inc then dec
//   histogram/observe            kit::Histogram::observe, 16 latency buckets
//   conn/open_close              ConnectionManager on_open + on_close
//   drain/enter_leave            Drain enter + leave (one shared word)
//   middleware/none              a handler called directly (the floor for the rows below)
//   middleware/metrics           HttpMetrics around it
//   middleware/all               drain, metrics, rate limit, concurrency limit, as mpg-httpd
//                                stacks them
//   registry/render_200_series   one /metrics scrape of 200 series
#include <benchmark/benchmark.h>

#include <atomic>
#include <string>
#include <vector>

#include "mpg/kit/circuit_breaker.hpp"
#include "mpg/kit/concurrency_limiter.hpp"
#include "mpg/kit/connection_manager.hpp"
#include "mpg/kit/drain.hpp"
#include "mpg/kit/http_metrics.hpp"
#include "mpg/kit/rate_limiter.hpp"
#include "mpg/kit/registry.hpp"
#include "mpg/kit/token_bucket.hpp"

namespace {

using namespace mpg;
using namespace mpg::kit;

// kNeverLimits: a rate the benchmark cannot reach, so every check admits.
constexpr Rate kNeverLimits{.per_second = 1e9, .burst = 1e12};

void per_op(benchmark::State& st) {
  st.SetItemsProcessed(st.iterations());
  st.counters["ns_per_op"] = benchmark::Counter(double(st.iterations()),
                                                benchmark::Counter::kIsRate |
                                                    benchmark::Counter::kInvert);
}

void BM_SteadyNow(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(Clock::now());
  per_op(st);
}
BENCHMARK(BM_SteadyNow)->Name("clock/steady_now");

void BM_BucketTake(benchmark::State& st) {
  static TokenBucket b(kNeverLimits);
  for (auto _ : st) benchmark::DoNotOptimize(b.take(Clock::now()));
  per_op(st);
}
BENCHMARK(BM_BucketTake)->Name("bucket/take")->Threads(1)->Threads(2);

void BM_BucketRefuse(benchmark::State& st) {
  static TokenBucket b({.per_second = 1e-6, .burst = 1});
  b.take(Clock::now());
  for (auto _ : st) benchmark::DoNotOptimize(b.take(Clock::now()));
  per_op(st);
}
BENCHMARK(BM_BucketRefuse)->Name("bucket/refuse")->Threads(1)->Threads(2);

void BM_ClientsOne(benchmark::State& st) {
  static ClientBuckets t(kNeverLimits, 64 * 1024);
  for (auto _ : st) benchmark::DoNotOptimize(t.take("192.0.2.1", Clock::now()));
  per_op(st);
}
BENCHMARK(BM_ClientsOne)->Name("clients/take_one_ip")->Threads(1)->Threads(2);

std::vector<std::string> make_ips(int n) {
  std::vector<std::string> ips;
  for (int i = 0; i < n; i++)
    ips.push_back("10." + std::to_string(i >> 16 & 255) + "." + std::to_string(i >> 8 & 255) +
                  "." + std::to_string(i & 255));
  return ips;
}

void BM_ClientsMany(benchmark::State& st) {
  static ClientBuckets t(kNeverLimits, 64 * 1024);
  static const std::vector<std::string> ips = make_ips(64 * 1024);
  std::size_t i = std::size_t(st.thread_index()) * 7919;
  for (auto _ : st) {
    benchmark::DoNotOptimize(t.take(ips[i % ips.size()], Clock::now()));
    i += 1;
  }
  per_op(st);
}
BENCHMARK(BM_ClientsMany)->Name("clients/take_64k_ips")->Threads(1)->Threads(2);

void BM_LimiterCheck(benchmark::State& st) {
  static RateLimiter l({.server = kNeverLimits, .per_client = kNeverLimits});
  for (auto _ : st) benchmark::DoNotOptimize(l.check("192.0.2.1", Clock::now()));
  per_op(st);
}
BENCHMARK(BM_LimiterCheck)->Name("limiter/check")->Threads(1)->Threads(2);

void BM_Slots(benchmark::State& st) {
  static Slots s(100);
  for (auto _ : st) {
    benchmark::DoNotOptimize(s.try_acquire());
    s.release();
  }
  per_op(st);
}
BENCHMARK(BM_Slots)->Name("slots/acquire_release")->Threads(1)->Threads(2);

void BM_BreakerClosed(benchmark::State& st) {
  static CircuitBreaker b;
  for (auto _ : st) b.try_acquire().success();
  per_op(st);
}
BENCHMARK(BM_BreakerClosed)->Name("breaker/closed_call")->Threads(1)->Threads(2);

void BM_BreakerOpen(benchmark::State& st) {
  static CircuitBreaker b({.consecutive_failures = 1, .open_timeout = std::chrono::hours(1)});
  if (st.thread_index() == 0) b.try_acquire().failure();
  for (auto _ : st) benchmark::DoNotOptimize(bool(b.try_acquire()));
  per_op(st);
}
BENCHMARK(BM_BreakerOpen)->Name("breaker/open_refuse")->Threads(1)->Threads(2);

void BM_CounterStriped(benchmark::State& st) {
  static Counter c;
  for (auto _ : st) c.inc();
  per_op(st);
}
BENCHMARK(BM_CounterStriped)->Name("counter/striped_inc")->Threads(1)->Threads(2);

void BM_CounterShared(benchmark::State& st) {
  alignas(64) static std::atomic<std::uint64_t> c{0};
  for (auto _ : st) c.fetch_add(1, std::memory_order_relaxed);
  per_op(st);
}
BENCHMARK(BM_CounterShared)->Name("counter/shared_atomic_inc")->Threads(1)->Threads(2);

void BM_Gauge(benchmark::State& st) {
  static Gauge g;
  for (auto _ : st) {
    g.inc();
    g.dec();
  }
  per_op(st);
}
BENCHMARK(BM_Gauge)->Name("gauge/inc_dec")->Threads(1)->Threads(2);

void BM_Histogram(benchmark::State& st) {
  static Histogram h(latency_buckets());
  double v = 0.00003 * (st.thread_index() + 1);
  for (auto _ : st) {
    h.observe(v);
    v = v > 5 ? 0.00003 : v * 1.7;  // walk the buckets
  }
  per_op(st);
}
BENCHMARK(BM_Histogram)->Name("histogram/observe")->Threads(1)->Threads(2);

void BM_Conn(benchmark::State& st) {
  static ConnectionManager m({.log = [](std::string_view) {}});
  for (auto _ : st) {
    benchmark::DoNotOptimize(m.on_open());
    m.on_close();
  }
  per_op(st);
}
BENCHMARK(BM_Conn)->Name("conn/open_close")->Threads(1)->Threads(2);

void BM_Drain(benchmark::State& st) {
  static Drain d;
  for (auto _ : st) {
    benchmark::DoNotOptimize(d.enter());
    d.leave();
  }
  per_op(st);
}
BENCHMARK(BM_Drain)->Name("drain/enter_leave")->Threads(1)->Threads(2);

// A request as a transport hands it to the handler.
http::Request make_request() {
  http::Request req;
  req.method = "GET";
  req.target = req.path = "/plaintext";
  req.remote_ip = "192.0.2.1";
  return req;
}

const http::Handler& plaintext() {
  static const http::Handler h = [](const http::Request&, http::Response& res) {
    res.text("Hello, World!");
  };
  return h;
}

void run_handler(benchmark::State& st, const http::Handler& h) {
  http::Request req = make_request();
  http::Response res;
  for (auto _ : st) {
    res.clear();
    h(req, res);
    benchmark::DoNotOptimize(res.status);
  }
  per_op(st);
}

void BM_MiddlewareNone(benchmark::State& st) { run_handler(st, plaintext()); }
BENCHMARK(BM_MiddlewareNone)->Name("middleware/none")->Threads(1)->Threads(2);

void BM_MiddlewareMetrics(benchmark::State& st) {
  static Registry r;
  static HttpMetrics m(r);
  static const http::Handler h = m.middleware()(plaintext());
  run_handler(st, h);
}
BENCHMARK(BM_MiddlewareMetrics)->Name("middleware/metrics")->Threads(1)->Threads(2);

void BM_MiddlewareAll(benchmark::State& st) {
  static Registry r;
  static HttpMetrics m(r);
  static Drain d;
  static RateLimiter l({.server = kNeverLimits, .per_client = kNeverLimits});
  static ConcurrencyLimiter c({.limit = 100});
  static const http::Handler h =
      d.middleware()(m.middleware()(l.middleware()(c.middleware()(plaintext()))));
  run_handler(st, h);
}
BENCHMARK(BM_MiddlewareAll)->Name("middleware/all")->Threads(1)->Threads(2);

void BM_Render(benchmark::State& st) {
  Registry r;
  Family<Counter>& f = r.counter("http_requests_total", "Requests.", {"code", "method"});
  for (int i = 0; i < 190; i++) f.with({std::to_string(200 + i), "GET"}).inc(i);
  r.histogram("latency_seconds", "Latency.", {0.001, 0.01, 0.1, 1}).with().observe(0.05);
  std::string out;
  for (auto _ : st) {
    out.clear();
    r.render(out);
    benchmark::DoNotOptimize(out.data());
  }
  per_op(st);
  st.counters["bytes"] = double(out.size());
}
BENCHMARK(BM_Render)->Name("registry/render_200_series");

}  // namespace

BENCHMARK_MAIN();
