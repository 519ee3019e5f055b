// metrics.cpp: the striped metrics' slow paths: stripe assignment and reading the sums.
#include "mpg/kit/metrics.hpp"

#include <cmath>
#include <stdexcept>

namespace mpg::kit {

namespace detail {

std::size_t assign_stripe() {
  // Round-robin: the first kStripes threads that record get a stripe each.
  static std::atomic<std::size_t> next{0};
  return next.fetch_add(1, std::memory_order_relaxed) % kStripes;
}

}  // namespace detail

std::uint64_t Counter::value() const {
  std::uint64_t sum = 0;
  for (const detail::Cell& c : cells_) sum += c.v.load(std::memory_order_relaxed);
  return sum;
}

void Gauge::set(double v) {
  cells_[0].v.store(std::bit_cast<std::uint64_t>(v), std::memory_order_relaxed);
  for (std::size_t i = 1; i < detail::kStripes; i++)
    cells_[i].v.store(std::bit_cast<std::uint64_t>(0.0), std::memory_order_relaxed);
}

double Gauge::value() const {
  double sum = 0;
  for (const detail::Cell& c : cells_)
    sum += std::bit_cast<double>(c.v.load(std::memory_order_relaxed));
  return sum;
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  for (std::size_t i = 0; i < bounds_.size(); i++) {
    if (!std::isfinite(bounds_[i]))
      throw std::invalid_argument("kit::Histogram: bounds must be finite (+Inf is implied)");
    if (i > 0 && !(bounds_[i - 1] < bounds_[i]))
      throw std::invalid_argument("kit::Histogram: bounds must be strictly increasing");
  }
  std::size_t words = bounds_.size() + 2;  // buckets, +Inf, sum
  lines_per_stripe_ = (words + kPerLine - 1) / kPerLine;
  lines_ = std::make_unique<Line[]>(lines_per_stripe_ * detail::kStripes);  // zeroed
}

HistogramSnapshot Histogram::snapshot() const {
  HistogramSnapshot snap;
  snap.bounds = bounds_;
  std::size_t buckets = bounds_.size() + 1;
  std::vector<std::uint64_t> counts(buckets, 0);
  for (std::size_t s = 0; s < detail::kStripes; s++) {
    for (std::size_t b = 0; b < buckets; b++)
      counts[b] += slot(s, b).load(std::memory_order_relaxed);
    snap.sum += std::bit_cast<double>(slot(s, buckets).load(std::memory_order_relaxed));
  }
  snap.cumulative.resize(buckets);
  std::uint64_t running = 0;
  for (std::size_t b = 0; b < buckets; b++) snap.cumulative[b] = running += counts[b];
  snap.count = running;
  return snap;
}

}  // namespace mpg::kit
