// scavenger.cpp: see scavenger.hpp.
#include "mpg/kit/scavenger.hpp"

#include <malloc.h>

#include "mpg/kit/registry.hpp"
#include "runtime/platform.hpp"

namespace mpg::kit {

// glibc's malloc answers unless a sanitizer's allocator does (runtime/platform.hpp tells);
// mallinfo2 is glibc 2.33+.
#if defined(__GLIBC__) && !MPG_ASAN && !MPG_TSAN
#if __GLIBC_PREREQ(2, 33)
#define MPG_SCAVENGER_GLIBC 1
#endif
#endif

bool Scavenger::active() {
#ifdef MPG_SCAVENGER_GLIBC
  return true;
#else
  return false;
#endif
}

bool Scavenger::tick() {
#ifdef MPG_SCAVENGER_GLIBC
  std::unique_lock<std::mutex> lk(mu_, std::try_to_lock);
  if (!lk.owns_lock()) return false;
  ticks_++;
  // mallinfo2: fordblks = free bytes in every arena (bins and fastbins), uordblks = allocated;
  // memory from mmap'd chunks is neither (it goes back to the kernel at free).
  struct mallinfo2 mi = mallinfo2();
  free_ = mi.fordblks;
  in_use_ = mi.uordblks;
  // Free memory that was reused since the last trim lowers the baseline: growth is counted
  // from the lowest point, so a later burst of frees is seen whole.
  if (ticks_ == 1 || free_ < baseline_free_) baseline_free_ = free_;
  std::size_t growth = free_ - baseline_free_;
  if (growth < cfg_.min_growth || double(growth) < cfg_.growth_ratio * double(in_use_)) return false;
  TimePoint now = cfg_.time.now();
  if (trims_ > 0 && now - last_trim_ < cfg_.min_interval) return false;  // the growth waits for the next tick
  last_trim_ = now;
  // malloc_trim(0): releases the top of each heap and, since glibc 2.8, every whole free page
  // inside them (MADV_DONTNEED). The free bytes stay free (not resident): the baseline moves up
  // to them, so the same memory is not trimmed again.
  malloc_trim(0);
  trims_++;
  baseline_free_ = free_;
  return true;
#else
  return false;
#endif
}

ScavengerStats Scavenger::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return {ticks_, trims_, free_, in_use_};
}

void Scavenger::register_metrics(Registry& r) {
  r.counter_fn("mpg_scavenger_trims_total", "Times the scavenger gave free heap memory back to the kernel.",
               [this] { return double(stats().trims); });
  r.gauge_fn("mpg_heap_free_bytes", "Bytes free inside the allocator at the scavenger's last look.",
             [this] { return double(stats().free_bytes); });
  r.gauge_fn("mpg_heap_in_use_bytes", "Bytes allocated at the scavenger's last look.",
             [this] { return double(stats().in_use_bytes); });
}

}  // namespace mpg::kit
