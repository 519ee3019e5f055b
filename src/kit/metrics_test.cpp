// metrics_test.cpp: the text exposition format to the byte (HELP/TYPE lines, label escaping,
// cumulative histogram buckets with +Inf, _sum, _count, numbers), registration rules, and
// striped counters, gauges and histograms summing exactly under concurrent threads.
#include "mpg/kit/metrics.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>
#include <vector>

#include "kit/test_support.hpp"
#include "mpg/kit/registry.hpp"

namespace mpg::kit {
namespace {

TEST(Exposition, CounterAndGaugeGolden) {
  Registry r;
  r.counter("http_requests_total", "Requests served.", {"code", "method"})
      .with({"200", "GET"})
      .inc(3);
  r.counter("http_requests_total", "Requests served.", {"code", "method"})
      .with({"404", "GET"})
      .inc();
  Gauge& g = r.gauge("temperature_celsius", "Current temperature.").with();
  g.set(21.5);
  r.counter("empty_total", "A family with no series yet.", {"x"});
  EXPECT_EQ(r.render(),
            "# HELP http_requests_total Requests served.\n"
            "# TYPE http_requests_total counter\n"
            "http_requests_total{code=\"200\",method=\"GET\"} 3\n"
            "http_requests_total{code=\"404\",method=\"GET\"} 1\n"
            "# HELP temperature_celsius Current temperature.\n"
            "# TYPE temperature_celsius gauge\n"
            "temperature_celsius 21.5\n"
            "# HELP empty_total A family with no series yet.\n"
            "# TYPE empty_total counter\n");
}

TEST(Exposition, LabelValuesEscapeBackslashQuoteAndNewline) {
  Registry r;
  r.counter("c_total", "h", {"path"}).with({"a\\b\"c\nd"}).inc();
  EXPECT_EQ(r.render(),
            "# HELP c_total h\n"
            "# TYPE c_total counter\n"
            "c_total{path=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(Exposition, HelpEscapesBackslashAndNewlineButNotQuote) {
  Registry r;
  r.gauge("g", "line one\nsays \"C:\\dir\"").with().set(1);
  EXPECT_EQ(r.render(),
            "# HELP g line one\\nsays \"C:\\\\dir\"\n"
            "# TYPE g gauge\n"
            "g 1\n");
}

TEST(Exposition, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry r;
  Family<Histogram>& f =
      r.histogram("rpc_duration_seconds", "RPC latency.", {0.005, 0.1, 1, 2.5}, {"method"});
  Histogram& h = f.with({"GET"});
  for (double v : {0.001, 0.005, 0.05, 0.05, 0.5, 3.0}) h.observe(v);
  f.with({"PUT"});  // a series with no observations renders zeros
  EXPECT_EQ(r.render(),
            "# HELP rpc_duration_seconds RPC latency.\n"
            "# TYPE rpc_duration_seconds histogram\n"
            "rpc_duration_seconds_bucket{method=\"GET\",le=\"0.005\"} 2\n"
            "rpc_duration_seconds_bucket{method=\"GET\",le=\"0.1\"} 4\n"
            "rpc_duration_seconds_bucket{method=\"GET\",le=\"1\"} 5\n"
            "rpc_duration_seconds_bucket{method=\"GET\",le=\"2.5\"} 5\n"
            "rpc_duration_seconds_bucket{method=\"GET\",le=\"+Inf\"} 6\n"
            "rpc_duration_seconds_sum{method=\"GET\"} 3.606\n"
            "rpc_duration_seconds_count{method=\"GET\"} 6\n"
            "rpc_duration_seconds_bucket{method=\"PUT\",le=\"0.005\"} 0\n"
            "rpc_duration_seconds_bucket{method=\"PUT\",le=\"0.1\"} 0\n"
            "rpc_duration_seconds_bucket{method=\"PUT\",le=\"1\"} 0\n"
            "rpc_duration_seconds_bucket{method=\"PUT\",le=\"2.5\"} 0\n"
            "rpc_duration_seconds_bucket{method=\"PUT\",le=\"+Inf\"} 0\n"
            "rpc_duration_seconds_sum{method=\"PUT\"} 0\n"
            "rpc_duration_seconds_count{method=\"PUT\"} 0\n");
}

TEST(Exposition, UnlabeledHistogramHasOnlyLe) {
  Registry r;
  Histogram& h = r.histogram("d", "h", {1}).with();
  h.observe(1);  // le is inclusive: v <= bound
  h.observe(2);
  EXPECT_EQ(r.render(),
            "# HELP d h\n"
            "# TYPE d histogram\n"
            "d_bucket{le=\"1\"} 1\n"
            "d_bucket{le=\"+Inf\"} 2\n"
            "d_sum 3\n"
            "d_count 2\n");
}

TEST(Exposition, NumbersAndSampledSeries) {
  Registry r;
  r.gauge_fn("g", "h", [] { return 0.1; }, {{"k", "a"}});
  r.gauge_fn("g", "h", [] { return -2.0; }, {{"k", "b"}});
  r.gauge_fn("g", "h", [] { return 1e300; }, {{"k", "c"}});
  r.gauge_fn("g", "h", [] { return 1.0 / 0.0; }, {{"k", "d"}});
  r.gauge_fn("g", "h", [] { return -1.0 / 0.0; }, {{"k", "e"}});
  r.gauge_fn("g", "h", [] { return 0.0 / 0.0; }, {{"k", "f"}});
  r.gauge_fn("g", "h", [] { return 123456789.0; }, {{"k", "g"}});
  r.counter_fn("n_total", "h", [] { return 7.0; });
  EXPECT_EQ(r.render(),
            "# HELP g h\n"
            "# TYPE g gauge\n"
            "g{k=\"a\"} 0.1\n"
            "g{k=\"b\"} -2\n"
            "g{k=\"c\"} 1e+300\n"
            "g{k=\"d\"} +Inf\n"
            "g{k=\"e\"} -Inf\n"
            "g{k=\"f\"} NaN\n"
            "g{k=\"g\"} 123456789\n"
            "# HELP n_total h\n"
            "# TYPE n_total counter\n"
            "n_total 7\n");
}

TEST(Registry, GetOrCreateReturnsTheSameFamilyAndSeries) {
  Registry r;
  Counter& a = r.counter("x_total", "h", {"k"}).with({"v"});
  Counter& b = r.counter("x_total", "h", {"k"}).with({"v"});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &r.counter("x_total", "h", {"k"}).with({"w"}));
}

TEST(Registry, MisuseThrows) {
  Registry r;
  r.counter("x_total", "h", {"k"});
  EXPECT_THROW(r.gauge("x_total", "h", {"k"}), std::invalid_argument);    // another type
  EXPECT_THROW(r.counter("x_total", "h", {"j"}), std::invalid_argument);  // other labels
  EXPECT_THROW(r.counter("x_total", "h", {"k"}).with({"a", "b"}), std::invalid_argument);
  EXPECT_THROW(r.counter("1abc", "h"), std::invalid_argument);
  EXPECT_THROW(r.counter("a-b", "h"), std::invalid_argument);
  EXPECT_THROW(r.counter("ok", "h", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(r.counter("ok2", "h", {"a:b"}), std::invalid_argument);
  EXPECT_THROW(r.counter("ok3", "h", {"a", "a"}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h1", "h", {1}, {"le"}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h2", "h", {2, 1}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h3", "h", {1, 1.0 / 0.0}), std::invalid_argument);
  r.histogram("h4", "h", {1, 2});
  EXPECT_THROW(r.histogram("h4", "h", {1, 3}), std::invalid_argument);  // other buckets
  r.gauge_fn("s", "h", [] { return 1.0; });
  EXPECT_THROW(r.gauge_fn("s", "h", [] { return 2.0; }), std::invalid_argument);
  EXPECT_NO_THROW(r.counter("ns:sub_total", "h"));  // colons are allowed in metric names
}

TEST(Registry, HandlerServesTheTextFormat) {
  Registry r;
  r.counter("hits_total", "Hits.").with().inc(2);
  http::Handler h = r.handler();
  http::test::Parsed p = test::serve_get(h, "/metrics");
  EXPECT_EQ(p.status, 200);
  EXPECT_EQ(p.field("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(p.body, "# HELP hits_total Hits.\n# TYPE hits_total counter\nhits_total 2\n");
}

TEST(Striped, ConcurrentCounterIncrementsSumExactly) {
  Counter c;
  constexpr int kThreads = 8, kPer = 200'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++)
    threads.emplace_back([&] {
      for (int i = 0; i < kPer; i++) c.inc();
    });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(c.value(), std::uint64_t(kThreads) * kPer);
}

TEST(Striped, ConcurrentGaugeAndHistogramSumExactly) {
  Gauge g;
  Histogram h({1, 10});
  constexpr int kThreads = 8, kPer = 50'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPer; i++) {
        g.inc();
        if (i % 2) g.dec();
        h.observe(t % 2 ? 0.5 : 5);  // both exact in binary: the sum is exact too
      }
    });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(g.value(), double(kThreads) * kPer / 2);
  HistogramSnapshot s = h.snapshot();
  EXPECT_EQ(s.count, std::uint64_t(kThreads) * kPer);
  EXPECT_EQ(s.cumulative[0], std::uint64_t(kThreads / 2) * kPer);
  EXPECT_EQ(s.cumulative[1], s.count);
  EXPECT_EQ(s.cumulative[2], s.count);
  EXPECT_EQ(s.sum, (kThreads / 2) * kPer * 0.5 + (kThreads / 2) * kPer * 5.0);
}

TEST(Striped, GaugeIncOnOneThreadDecOnAnother) {
  // A goroutine may migrate between its inc and its dec: the stripes differ, the sum is right.
  Gauge g;
  std::thread([&] { g.inc(); }).join();
  std::thread([&] { g.dec(); }).join();
  EXPECT_EQ(g.value(), 0);
  g.set(5);
  EXPECT_EQ(g.value(), 5);
}

TEST(Striped, ConcurrentSeriesCreationAndScrapes) {
  // Threads create series and record while another renders: the final text holds every count.
  Registry r;
  Family<Counter>& f = r.counter("c_total", "h", {"k"});
  std::atomic<bool> stop{false};
  std::thread scraper([&] {
    std::string out;
    while (!stop.load()) {
      out.clear();
      r.render(out);
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++)
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; i++) f.with({std::to_string(i % 20)}).inc();
    });
  for (std::thread& t : threads) t.join();
  stop = true;
  scraper.join();
  for (int k = 0; k < 20; k++) EXPECT_EQ(f.with({std::to_string(k)}).value(), 400u) << k;
}

}  // namespace
}  // namespace mpg::kit
