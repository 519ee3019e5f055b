// test_util.hpp: helpers shared by the tests.
#pragma once
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "mpg/runtime.hpp"
#include "runtime/platform.hpp"

namespace mpg::testing {

// test_scale: MPG_TEST_SCALE (asan or tsan, set by `make test`), else the sanitizer this binary
// was built with, so a sanitizer build run by hand (ctest in build-asan) is scaled down too: a
// million fibers under ASan took 24 GiB before the OOM killer stopped them.
inline const char* test_scale() {
  if (const char* s = std::getenv("MPG_TEST_SCALE")) return s;
#if defined(MPG_TSAN)
  return "tsan";
#elif defined(MPG_ASAN)
  return "asan";
#else
  return nullptr;
#endif
}

// scaled: shrinks a test's iteration count under the sanitizers (MPG_TEST_SCALE=asan or tsan,
// set by `make test`), which run code 5-20x slower.
inline long scaled(long n) {
  const char* s = test_scale();
  if (!s) return n;
  long d = std::strcmp(s, "tsan") == 0 ? 50 : std::strcmp(s, "asan") == 0 ? 10 : 1;
  long r = n / d;
  return r < 1 ? 1 : r;
}
// max_live: the most goroutines a test should keep alive at once. TSan counts every fiber as a
// thread and dies past 8128, so TSan runs keep well below that.
inline long max_live(long n) {
  const char* s = test_scale();
  if (s && std::strcmp(s, "tsan") == 0 && n > 2000) return 2000;
  return n;
}
inline bool under_sanitizer() { return test_scale() != nullptr; }

// resident_bytes: this process's RSS (/proc/self/statm), 0 if unreadable.
inline long resident_bytes() {
  long pages = 0, resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

// Rng: splitmix64, deterministic per seed (each goroutine owns one).
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint32_t below(std::uint32_t n) { return std::uint32_t(next() % n); }
};

// wait_waiting: polls (from a goroutine) until at least n goroutines are parked. Returns false
// on a 5 s timeout.
inline bool wait_waiting(std::uint64_t n) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (mpg::stats().waiting < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    mpg::sleep_for(std::chrono::microseconds(100));
  }
  return true;
}

}  // namespace mpg::testing
