// date_test.cpp: IMF-fixdate formatting (RFC 9110 §5.6.7) and the per-thread Date cache.
#include "mpg/http/date.hpp"

#include <gtest/gtest.h>

#include <ctime>
#include <string>
#include <thread>
#include <vector>

namespace mpg::http {
namespace {

std::string format(std::int64_t t) {
  char buf[kHttpDateLength];
  format_http_date(t, buf);
  return std::string(buf, kHttpDateLength);
}

TEST(HttpDate, KnownInstants) {
  EXPECT_EQ(format(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(format(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110's example
  EXPECT_EQ(format(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");  // a leap day
  EXPECT_EQ(format(1709251199), "Thu, 29 Feb 2024 23:59:59 GMT");
  EXPECT_EQ(format(2147483648), "Tue, 19 Jan 2038 03:14:08 GMT");  // past 32-bit time_t
  EXPECT_EQ(format(253402300799), "Fri, 31 Dec 9999 23:59:59 GMT");
}

// parse_back: the instant an IMF-fixdate names (by strptime/timegm), or -1.
std::int64_t parse_back(std::string_view d) {
  std::tm tm{};
  std::string s(d);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return -1;
  return timegm(&tm);
}

TEST(HttpDate, CachedValueIsNowOnEveryThread) {
  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 20000;
  std::vector<std::thread> threads;
  std::vector<int> bad(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &bad] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        std::int64_t before = std::time(nullptr);
        std::string_view d = http_date();
        std::int64_t after = std::time(nullptr);
        std::int64_t at = parse_back(d);
        if (d.size() != kHttpDateLength || at < before || at > after) ++bad[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(bad[t], 0) << "thread " << t;
}

TEST(HttpDate, RefreshesWhenTheSecondChanges) {
  std::string first(http_date());
  std::int64_t start = std::time(nullptr);
  while (std::time(nullptr) == start) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_NE(std::string(http_date()), first);
}

}  // namespace
}  // namespace mpg::http
