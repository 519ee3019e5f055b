// alloc_counter.hpp: counts heap allocations by replacing the global operator new, for the
// zero-allocation test and the benchmark. It defines operator new and delete, so include it in
// exactly one source file of a program. Under a sanitizer (which supplies its own operator new)
// it replaces nothing and kCountsAllocations is false.
#pragma once
#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace mpg::http::test {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kCountsAllocations = false;
#else
inline constexpr bool kCountsAllocations = true;
#endif

// allocations: operator new calls so far, all threads.
inline std::atomic<long> allocations{0};
// live_bytes: bytes held by operator new's live blocks (malloc_usable_size), all threads.
inline std::atomic<long> live_bytes{0};

}  // namespace mpg::http::test

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
void* operator new(std::size_t n) {
  mpg::http::test::allocations.fetch_add(1, std::memory_order_relaxed);
  void* p = std::malloc(n ? n : 1);
  if (p == nullptr) throw std::bad_alloc();
  mpg::http::test::live_bytes.fetch_add(malloc_usable_size(p), std::memory_order_relaxed);
  return p;
}
void operator delete(void* p) noexcept {
  if (p != nullptr)
    mpg::http::test::live_bytes.fetch_sub(malloc_usable_size(p), std::memory_order_relaxed);
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
#endif
