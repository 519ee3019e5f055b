// alloc_counter.hpp: counts heap allocations by replacing the global operator new, for the
// zero-allocation test and the benchmark. It defines operator new and delete, so include it in
// exactly one source file of a program. Under a sanitizer (which supplies its own operator new)
// it replaces nothing and kCountsAllocations is false.
#pragma once
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

}  // namespace mpg::http::test

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
void* operator new(std::size_t n) {
  mpg::http::test::allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif
