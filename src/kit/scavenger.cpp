// scavenger.cpp: see scavenger.hpp.
#include "mpg/kit/scavenger.hpp"

#include <malloc.h>

#include "mpg/kit/registry.hpp"

namespace mpg::kit {

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MPG_SCAVENGER_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MPG_SCAVENGER_SANITIZED 1
#endif
#endif

// The sanitizers' allocators answer malloc under ASan and TSan; mallinfo2 is glibc 2.33+.
#if defined(__GLIBC__) && !defined(MPG_SCAVENGER_SANITIZED)
#if __GLIBC_PREREQ(2, 33)
#define MPG_SCAVENGER_GLIBC 1
#endif
#endif
#ifdef MPG_SCAVENGER_GLIBC
constexpr bool kGlibcMalloc = true;
#else
constexpr bool kGlibcMalloc = false;
#endif

}  // namespace

bool Scavenger::active() { return kGlibcMalloc; }

bool Scavenger::tick() {
  std::unique_lock<std::mutex> lk(mu_, std::try_to_lock);
  if (!lk.owns_lock() || !kGlibcMalloc) return false;
  ticks_++;
#ifdef MPG_SCAVENGER_GLIBC
  // mallinfo2: fordblks = free bytes in every arena (bins and fastbins), uordblks = allocated;
  // memory from mmap'd chunks is neither (it goes back to the kernel at free).
  struct mallinfo2 mi = mallinfo2();
  free_ = mi.fordblks;
  in_use_ = mi.uordblks;
#endif
  // Free memory that was reused since the last trim lowers the baseline: growth is counted
  // from the lowest point, so a later burst of frees is seen whole.
  if (!have_baseline_ || free_ < baseline_free_) {
    baseline_free_ = free_;
    have_baseline_ = true;
  }
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
