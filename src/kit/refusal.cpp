// refusal.cpp: the 429 and 503 answers of the kit's middleware.
#include "mpg/kit/refusal.hpp"

#include <charconv>

namespace mpg::kit {

std::int64_t retry_after_seconds(Nanos wait) {
  constexpr std::int64_t kNsPerSecond = 1'000'000'000;
  std::int64_t ns = wait.count();
  if (ns <= kNsPerSecond) return 1;
  return ns / kNsPerSecond + (ns % kNsPerSecond != 0 ? 1 : 0);
}

void refuse(http::Response& res, int status, Nanos wait, std::string_view body) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, retry_after_seconds(wait));
  res.text(body, status);
  res.set_header("Retry-After", std::string_view(digits, end - digits));
}

}  // namespace mpg::kit
