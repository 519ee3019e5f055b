// chars_test.cpp: the byte classes against RFC 9110/9112/3986's definitions, and the SIMD value
// scanner against the table it accelerates.
#include "http/chars.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mpg::http::detail {
namespace {

TEST(Chars, ClassesMatchTheGrammar) {
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    const bool alnum = std::isalnum(c) && c < 0x80;
    EXPECT_EQ(is(ch, kTchar),
              alnum || std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos)
        << c;
    EXPECT_EQ(is(ch, kValue), c == '\t' || (c >= 0x20 && c != 0x7f)) << c;
    EXPECT_EQ(is(ch, kHex), std::isxdigit(c) != 0 && c < 0x80) << c;
    EXPECT_EQ(is(ch, kTarget), alnum || std::string_view("-._~!$&'()*+,;=:@/?%[]").find(ch) !=
                                            std::string_view::npos)
        << c;
  }
}

// Every byte value, at every position of a 40-byte run (so before, inside and after a 16-byte
// block), stops value_run exactly where the table-driven run_of stops.
TEST(Chars, ValueRunAgreesWithTheTable) {
  for (int c = 0; c < 256; ++c) {
    for (std::size_t at = 0; at < 40; ++at) {
      std::string s(40, 'v');
      s[at] = static_cast<char>(c);
      const char* b = s.data();
      const char* e = b + s.size();
      ASSERT_EQ(value_run(b, e) - b, run_of(b, e, kValue) - b) << "byte " << c << " at " << at;
    }
  }
}

TEST(Chars, CaseInsensitiveCompareAndTrim) {
  EXPECT_TRUE(iequals("Content-Length", "content-LENGTH"));
  EXPECT_FALSE(iequals("Host", "Hosts"));
  EXPECT_FALSE(iequals("[", "{"));  // 0x5b and 0x7b differ by 0x20 but are not letters
  EXPECT_EQ(trim_ows(" \t a b \t"), "a b");
  EXPECT_EQ(trim_ows(" \t "), "");
}

}  // namespace
}  // namespace mpg::http::detail
