// scavenger.hpp: gives memory the allocator holds free back to the kernel (Go's background
// scavenger, for glibc malloc).
#pragma once
#include <cstddef>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <utility>

#include "mpg/kit/time.hpp"

namespace mpg::kit {

class Registry;

// ScavengerConfig: when a tick gives memory back. glibc returns freed memory to the kernel
// only from the top of a heap; a burst of frees in the middle (10,000 connections closing at
// once) stays resident, counted in RSS, until malloc_trim. The scavenger trims once the free
// bytes have grown by at least `min_growth` and by `growth_ratio` of the bytes in use since the
// lowest point after its last trim, and at most once per `min_interval`: churn smaller than that
// is never trimmed, and a heap swinging wider (bursts of connections opening and closing) is
// trimmed at most once per interval, each trim's pages faulting back in as the next burst reuses them.
struct ScavengerConfig {
  std::size_t min_growth = 2u << 20;  // 2 MiB
  double growth_ratio = 0.25;
  std::chrono::milliseconds min_interval{2000};
  TimeSource time;
};

// ScavengerStats: what the ticks saw and did.
struct ScavengerStats {
  std::uint64_t ticks = 0;
  std::uint64_t trims = 0;
  std::size_t free_bytes = 0;    // free in the allocator at the last tick
  std::size_t in_use_bytes = 0;  // allocated at the last tick
};

// Scavenger: call tick() periodically (mpg-httpd: once a second, as an mpg::blocking call: a
// trim walks every arena and may take a millisecond on a large heap). Thread-safe: one tick at
// a time; concurrent ticks skip. Under a sanitizer the allocator is not glibc's: ticks do nothing.
class Scavenger {
 public:
  explicit Scavenger(ScavengerConfig cfg = {}) : cfg_(std::move(cfg)) {}
  // active: false where malloc is not glibc's (under ASan or TSan, or without mallinfo2, glibc
  // 2.33+): tick() then does nothing.
  static bool active();
  // tick: looks at the allocator and trims if the rule above says so; true if it trimmed.
  bool tick();
  ScavengerStats stats() const;
  // register_metrics: mpg_scavenger_trims_total, mpg_heap_free_bytes, mpg_heap_in_use_bytes.
  void register_metrics(Registry& r);

 private:
  ScavengerConfig cfg_;
  mutable std::mutex mu_;  // one tick at a time; stats() waits for a running tick
  std::uint64_t ticks_ = 0, trims_ = 0;
  std::size_t free_ = 0, in_use_ = 0;
  std::size_t baseline_free_ = 0;  // free bytes right after the last trim (or the lowest since)
  TimePoint last_trim_{};
};

}  // namespace mpg::kit
