// chars.hpp: the byte classes of HTTP's grammar (RFC 9110 §5.6.2, RFC 9112 §3.2, RFC 3986 §2),
// one 256-entry table so every scanner tests a byte with one load and a mask.
#pragma once
#include <array>
#include <cstdint>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mpg::http::detail {

// CharClass: bits of kCharClass; a byte may have several.
enum CharClass : std::uint8_t {
  kTchar = 1 << 0,    // token character (RFC 9110 §5.6.2): methods, field names, codings
  kTarget = 1 << 1,   // may appear in a request-target (RFC 3986 §2: unreserved, sub-delims,
                      // ":" "@" "/" "?" "%" and the IP-literal brackets "[" "]")
  kValue = 1 << 2,    // field-vchar, SP or HTAB (RFC 9110 §5.5): what a field value may hold
  kHex = 1 << 3,      // HEXDIG (chunk sizes, RFC 9112 §7.1)
  kRegName = 1 << 4,  // reg-name of a Host (RFC 3986 §3.2.2: unreserved, sub-delims, "%")
};

constexpr std::array<std::uint8_t, 256> make_char_classes() {
  std::array<std::uint8_t, 256> t{};
  constexpr std::string_view kTokenPunct = "!#$%&'*+-.^_`|~";
  constexpr std::string_view kSubDelims = "!$&'()*+,;=";
  constexpr std::string_view kUnreservedPunct = "-._~";
  for (int c = 0; c < 256; ++c) {
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    bool digit = c >= '0' && c <= '9';
    bool unreserved = alpha || digit || kUnreservedPunct.find(char(c)) != std::string_view::npos;
    bool sub_delim = kSubDelims.find(char(c)) != std::string_view::npos;
    std::uint8_t bits = 0;
    if (alpha || digit || kTokenPunct.find(char(c)) != std::string_view::npos) bits |= kTchar;
    if (unreserved || sub_delim || c == ':' || c == '@' || c == '/' || c == '?' || c == '%' ||
        c == '[' || c == ']')
      bits |= kTarget;
    if ((c >= 0x21 && c <= 0x7e) || c >= 0x80 || c == ' ' || c == '\t') bits |= kValue;
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) bits |= kHex;
    if (unreserved || sub_delim || c == '%') bits |= kRegName;
    t[c] = bits;
  }
  return t;
}

inline constexpr std::array<std::uint8_t, 256> kCharClass = make_char_classes();

constexpr bool is(char c, CharClass cls) {
  return (kCharClass[static_cast<unsigned char>(c)] & cls) != 0;
}

// run_of: the end of the run of bytes of class `cls` that starts at p (the scanners' hot loops).
constexpr const char* run_of(const char* p, const char* end, CharClass cls) {
  while (p < end && is(*p, cls)) ++p;
  return p;
}

// value_run: run_of(p, end, kValue), 16 bytes at a time where SSE2 is available. Field values
// are most of a head's bytes (Accept, Cookie, User-Agent), so this is the scanners' hottest loop;
// bench/http_bench.cpp measures it (http/head_scanner_only).
inline const char* value_run(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i minus_one = _mm_set1_epi8(-1);
  const __m128i del = _mm_set1_epi8(0x7f);
  const __m128i tab = _mm_set1_epi8('\t');
  while (end - p >= 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // Not kValue: a CTL other than HTAB (0x00-0x1f) or DEL. As signed bytes, obs-text (>= 0x80)
    // is negative, so "0 <= x < 0x20" leaves it out.
    __m128i bad = _mm_and_si128(_mm_cmplt_epi8(x, space), _mm_cmpgt_epi8(x, minus_one));
    bad = _mm_andnot_si128(_mm_cmpeq_epi8(x, tab), bad);
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(x, del));
    if (const int mask = _mm_movemask_epi8(bad)) return p + __builtin_ctz(mask);
    p += 16;
  }
#endif
  return run_of(p, end, kValue);
}

constexpr char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c + ('a' - 'A')) : c; }

// hex_value: the value of a HEXDIG (`is(c, kHex)` must hold): chunk sizes, percent-encoding.
constexpr unsigned hex_value(char c) {
  if (c >= '0' && c <= '9') return unsigned(c - '0');
  return unsigned(ascii_lower(c) - 'a' + 10);
}

// iequals: ASCII case-insensitive equality (field names, codings and methods are ASCII).
constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

// trim_ows: without leading and trailing SP/HTAB (OWS, RFC 9110 §5.6.3).
constexpr std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// is_token: non-empty and every byte a tchar.
constexpr bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is(c, kTchar)) return false;
  return true;
}

static_assert(is('a', kTchar) && !is(' ', kTchar) && !is(':', kTchar) && !is('{', kTarget));
static_assert(is('\t', kValue) && !is('\0', kValue) && !is('\r', kValue) && !is('\x7f', kValue));

}  // namespace mpg::http::detail
