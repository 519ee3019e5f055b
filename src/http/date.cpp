// date.cpp: IMF-fixdate formatting and the per-thread Date cache (see date.hpp).
//
// Formatting uses std::chrono's civil calendar (pure arithmetic) rather than gmtime_r, which
// takes glibc's time zone lock. The cache is thread_local, keyed by the second: a thread formats
// at most once a second and threads never share a line, so there is nothing to lock.
#include "mpg/http/date.hpp"

#include <chrono>
#include <cstring>
#include <ctime>

namespace mpg::http {
namespace {

constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

char* put2(char* p, unsigned v) {
  p[0] = char('0' + v / 10);
  p[1] = char('0' + v % 10);
  return p + 2;
}

char* put3(char* p, const char* s) {
  p[0] = s[0];
  p[1] = s[1];
  p[2] = s[2];
  return p + 3;
}

struct DateCache {
  std::int64_t second = -1;
  char text[kHttpDateLength];
};

thread_local DateCache t_date;

}  // namespace

void format_http_date(std::int64_t unix_seconds, char* out) {
  using namespace std::chrono;
  const sys_seconds t{seconds{unix_seconds}};
  const sys_days day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<seconds> hms{t - day};
  const unsigned y = static_cast<unsigned>(static_cast<int>(ymd.year()));
  // "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7)
  char* p = put3(out, kDays[weekday{day}.c_encoding()]);
  *p++ = ',';
  *p++ = ' ';
  p = put2(p, static_cast<unsigned>(ymd.day()));
  *p++ = ' ';
  p = put3(p, kMonths[static_cast<unsigned>(ymd.month()) - 1]);
  *p++ = ' ';
  p = put2(p, y / 100);
  p = put2(p, y % 100);
  *p++ = ' ';
  p = put2(p, static_cast<unsigned>(hms.hours().count()));
  *p++ = ':';
  p = put2(p, static_cast<unsigned>(hms.minutes().count()));
  *p++ = ':';
  p = put2(p, static_cast<unsigned>(hms.seconds().count()));
  std::memcpy(p, " GMT", 4);
}

std::string_view http_date() {
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  DateCache& c = t_date;
  if (now != c.second) {
    format_http_date(now, c.text);
    c.second = now;
  }
  return {c.text, kHttpDateLength};
}

}  // namespace mpg::http
