// test_util.hpp: helpers shared by the tests.
#pragma once
#include <cstdlib>
#include <cstring>

namespace mpg::testing {

// scaled: shrinks a test's iteration count under the sanitizers (MPG_TEST_SCALE=asan or tsan,
// set by `make test`), which run code 5-20x slower.
inline long scaled(long n) {
  const char* s = std::getenv("MPG_TEST_SCALE");
  if (!s) return n;
  long d = std::strcmp(s, "tsan") == 0 ? 50 : std::strcmp(s, "asan") == 0 ? 10 : 1;
  long r = n / d;
  return r < 1 ? 1 : r;
}
// max_live: the most goroutines a test should keep alive at once. TSan counts every fiber as a
// thread and dies past 8128, so TSan runs keep well below that.
inline long max_live(long n) {
  const char* s = std::getenv("MPG_TEST_SCALE");
  if (s && std::strcmp(s, "tsan") == 0 && n > 2000) return 2000;
  return n;
}
inline bool under_sanitizer() { return std::getenv("MPG_TEST_SCALE") != nullptr; }

}  // namespace mpg::testing
