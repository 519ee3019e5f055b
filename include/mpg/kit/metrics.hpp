// metrics.hpp: Counter, Gauge and Histogram, striped so that recording is one relaxed atomic
// add on a cache line no other thread writes. registry.hpp names them and renders /metrics.
#pragma once
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace mpg::kit {

namespace detail {

// kStripes: copies of each metric, one per thread up to this many threads (then shared). Eight
// covers the loops and Ms of a server on a small machine; more only costs memory (64 bytes a
// copy of a counter).
inline constexpr std::size_t kStripes = 8;
inline constexpr std::size_t kLine = 64;  // cache line size on x86-64 and most aarch64

std::size_t assign_stripe();  // the next stripe, round-robin over threads

// t_stripe: this thread's stripe, assigned at its first recording. constinit and initial-exec:
// no TLS wrapper call and no __tls_get_addr on the recording path (libmpg is linked statically).
inline constinit thread_local std::size_t t_stripe __attribute__((tls_model("initial-exec"))) =
    kStripes;

inline std::size_t stripe() {
  std::size_t s = t_stripe;
  if (s >= kStripes) [[unlikely]]
    s = t_stripe = assign_stripe();
  return s;
}

// add_double: a += v on a double held as its bits (what std::atomic<double>::fetch_add does,
// spelt out so that it shares storage with integer counts). Uncontended: one CAS.
inline void add_double(std::atomic<std::uint64_t>& a, double v) {
  std::uint64_t old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, std::bit_cast<std::uint64_t>(std::bit_cast<double>(old) + v),
                                  std::memory_order_relaxed)) {
  }
}

struct alignas(kLine) Cell {
  std::atomic<std::uint64_t> v{0};
};

}  // namespace detail

// Counter: a monotonic count (requests, refusals). inc() is one relaxed fetch_add on the calling
// thread's stripe; value() sums the stripes, so a reader sees every increment that happened
// before it, and possibly some concurrent ones. Any thread; never blocks.
class Counter {
 public:
  void inc(std::uint64_t n = 1) {
    cells_[detail::stripe()].v.fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t value() const;

 private:
  detail::Cell cells_[detail::kStripes];
};

// Gauge: a value that goes up and down (requests in flight, open connections). add()/inc()/
// dec() are striped like Counter (one CAS on the calling thread's line), so a goroutine may
// inc on one thread and dec on another: the sum stays exact. set() writes the whole value and
// is meant for gauges with one writer (or set at scrape time): it does not compose with
// concurrent add() on other threads.
class Gauge {
 public:
  void add(double v) { detail::add_double(cells_[detail::stripe()].v, v); }
  void inc() { add(1); }
  void dec() { add(-1); }
  void set(double v);
  double value() const;

 private:
  detail::Cell cells_[detail::kStripes];  // each holds a double's bits
};

// HistogramSnapshot: a histogram read at one time: cumulative counts per upper bound (the last
// is +Inf and equals count), and the sum of the observations.
struct HistogramSnapshot {
  std::vector<double> bounds;             // upper bounds, without +Inf
  std::vector<std::uint64_t> cumulative;  // bounds.size() + 1 entries
  double sum = 0;
  std::uint64_t count = 0;
};

// Histogram: observations counted in fixed buckets (Prometheus's "le": v <= bound). observe()
// finds the bucket (binary search), then adds 1 to that bucket and v to the sum, both on the
// calling thread's stripe. The count is the sum of the buckets, so _count and the +Inf bucket
// always agree. Any thread; never blocks.
class Histogram {
 public:
  // bounds: strictly increasing finite upper bounds; +Inf is implied. Throws
  // std::invalid_argument otherwise.
  explicit Histogram(std::vector<double> bounds);
  void observe(double v) {
    std::size_t b = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
    std::size_t s = detail::stripe();
    slot(s, b).fetch_add(1, std::memory_order_relaxed);
    detail::add_double(slot(s, bounds_.size() + 1), v);
  }
  HistogramSnapshot snapshot() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  static constexpr std::size_t kPerLine = detail::kLine / sizeof(std::uint64_t);
  struct alignas(detail::kLine) Line {
    std::atomic<std::uint64_t> v[kPerLine];
  };
  // slot: stripe s's k-th word: one count per bucket (+Inf at bounds.size()), then the sum's
  // bits; each stripe starts on its own line.
  std::atomic<std::uint64_t>& slot(std::size_t s, std::size_t k) const {
    return lines_[s * lines_per_stripe_ + k / kPerLine].v[k % kPerLine];
  }

  std::vector<double> bounds_;
  std::size_t lines_per_stripe_;
  std::unique_ptr<Line[]> lines_;
};

// latency_buckets: seconds, 100 us to 10 s: a server here answers in tens of microseconds, and
// Prometheus's default buckets (5 ms and up) would put every request in the first one.
inline const std::vector<double>& latency_buckets() {
  static const std::vector<double> b = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return b;
}

}  // namespace mpg::kit
