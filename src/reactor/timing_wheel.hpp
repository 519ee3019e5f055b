// timing_wheel.hpp: a coarse hashed wheel for idle and keep-alive deadlines.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mpg::reactor::detail {

// TimingWheel: buckets of connection ids, one per tick; owned by a worker, loop thread only.
// A request costs no wheel update at all: the connection only stamps its last-input time, and
// when its bucket comes up the worker either closes it or re-files it for the time left (lazy
// re-insertion). So a busy connection is touched once per timeout, not once per request.
class TimingWheel {
 public:
  // slots: the wheel spans slots - 1 ticks ahead.
  explicit TimingWheel(std::size_t slots) : slots_(slots < 2 ? 2 : slots) {}
  // schedule: files `id` `ticks` ticks from now (clamped to 1 .. span).
  void schedule(std::uint64_t id, std::size_t ticks) {
    if (ticks < 1) ticks = 1;
    if (ticks > slots_.size() - 1) ticks = slots_.size() - 1;
    slots_[(cursor_ + ticks) % slots_.size()].push_back(id);
  }
  // advance: moves one tick and returns the ids filed for it (the caller re-files the living).
  std::vector<std::uint64_t> advance() {
    cursor_ = (cursor_ + 1) % slots_.size();
    std::vector<std::uint64_t> due;
    due.swap(slots_[cursor_]);
    return due;
  }
  std::size_t span() const { return slots_.size() - 1; }

 private:
  std::vector<std::vector<std::uint64_t>> slots_;
  std::size_t cursor_ = 0;
};

}  // namespace mpg::reactor::detail
