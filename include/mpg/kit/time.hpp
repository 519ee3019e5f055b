// time.hpp: the kit's time source: steady_clock in production, a hand-moved clock in tests.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <utility>

namespace mpg::kit {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Nanos = std::chrono::nanoseconds;

// to_ns: a time as nanoseconds since the clock's epoch, the kit's lock-free representation.
inline std::int64_t to_ns(TimePoint t) { return Nanos(t.time_since_epoch()).count(); }

// kLongAgoNs: a time before any clock reading, far enough from every one that subtracting the
// two cannot overflow: the initial value of "last time this happened".
inline constexpr std::int64_t kLongAgoNs = std::numeric_limits<std::int64_t>::min() / 4;

// TimeSource: where a kit object reads the time. Default-constructed it reads steady_clock
// directly (one vDSO call, about 20 ns); tests pass a function, usually ManualClock::source().
// A plain value, copied into each object; now() is safe from any thread if the function is.
class TimeSource {
 public:
  TimeSource() = default;
  explicit TimeSource(std::function<TimePoint()> fn) : fn_(std::move(fn)) {}
  TimePoint now() const { return fn_ ? fn_() : Clock::now(); }

 private:
  std::function<TimePoint()> fn_;  // empty: steady_clock
};

// ManualClock: a clock that moves only when told, for deterministic tests of refill, timeouts
// and rate-limited logging. Thread-safe (one atomic). Must outlive every TimeSource made from it.
class ManualClock {
 public:
  // The start is an arbitrary non-zero time, so no code may treat the epoch as special.
  explicit ManualClock(Nanos start = std::chrono::hours(1)) : ns_(start.count()) {}
  TimePoint now() const { return TimePoint(Nanos(ns_.load(std::memory_order_relaxed))); }
  void advance(Nanos d) { ns_.fetch_add(d.count(), std::memory_order_relaxed); }
  TimeSource source() const {
    return TimeSource([this] { return now(); });
  }

 private:
  std::atomic<std::int64_t> ns_;  // nanoseconds since steady_clock's epoch
};

}  // namespace mpg::kit
