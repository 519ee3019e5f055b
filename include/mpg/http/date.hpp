// date.hpp: the Date header's value (RFC 9110 §6.6.1), cached per thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mpg::http {

// kHttpDateLength: an IMF-fixdate is always 29 characters: "Sun, 06 Nov 1994 08:49:37 GMT".
inline constexpr std::size_t kHttpDateLength = 29;

// format_http_date: writes `unix_seconds` (UTC, years 1970..9999) as an IMF-fixdate
// (RFC 9110 §5.6.7) into out[0..kHttpDateLength); no terminator.
void format_http_date(std::int64_t unix_seconds, char* out);

// http_date: the current time as an IMF-fixdate. Each thread keeps its own copy, refreshed when
// the second changes, so many threads call it without a lock and format at most once a second.
// The view is valid on the calling thread until its next call.
std::string_view http_date();

}  // namespace mpg::http
