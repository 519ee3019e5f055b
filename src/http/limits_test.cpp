// limits_test.cpp: every Limits bound, at the limit (served) and one past it (refused), and the
// header deadline the session reports to its transport.
#include <gtest/gtest.h>

#include <thread>

#include "http/rules.hpp"
#include "http/test_support.hpp"

namespace mpg::http {
namespace {

using test::echo;
using test::expect_refused;
using test::expect_served;
using test::only_response;
using test::parse_responses;
using test::serve;

// request_with_target: a GET whose request line (CRLF included) is exactly `line_bytes` long.
std::string request_with_target(std::size_t line_bytes) {
  constexpr std::size_t kFixed = std::string_view("GET / HTTP/1.1\r\n").size();
  return "GET /" + std::string(line_bytes - kFixed, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
}

TEST(Limits, RequestLineAtTheLimitIsServedOneMoreIs414) {
  Limits limits;
  expect_served(request_with_target(limits.max_request_line), limits);
  expect_refused(request_with_target(limits.max_request_line + 1), detail::kRequestLineTooLong);
}

TEST(Limits, RequestLineLimitIsConfigurable) {
  Limits limits;
  limits.max_request_line = 64;
  expect_served(request_with_target(64), limits);
  expect_refused(request_with_target(65), detail::kRequestLineTooLong, limits);
}

TEST(Limits, EndlessRequestLineIsRefusedWithoutBuffering) {
  ServerSession s(test::echo_handler());
  std::string out;
  std::string chunk(1024, 'a');
  SessionStatus st = s.on_data("GET /", out);
  for (int i = 0; i < 64 && st == SessionStatus::kKeepReading; ++i) st = s.on_data(chunk, out);
  EXPECT_EQ(st, SessionStatus::kCloseAfterWrite);
  EXPECT_EQ(only_response(out).status, 414);
}

// request_with_fields: a GET whose header section (fields and the empty line) is exactly
// `section_bytes` long, in `fields` fields.
std::string request_with_fields(std::size_t section_bytes, std::size_t fields) {
  std::string section = "Host: a\r\n";
  for (std::size_t i = 1; i < fields; ++i) section += "X: b\r\n";
  std::size_t pad = section_bytes - section.size() - 2;  // the last field takes the rest
  section.insert(section.size() - 2, std::string(pad, 'c'));
  return "GET / HTTP/1.1\r\n" + section + "\r\n";
}

TEST(Limits, HeaderSectionAtTheLimitIsServedOneMoreIs431) {
  Limits limits;
  expect_served(request_with_fields(limits.max_header_bytes, 3), limits);
  expect_refused(request_with_fields(limits.max_header_bytes + 1, 3), detail::kHeaderTooLarge);
}

TEST(Limits, FieldCountAtTheLimitIsServedOneMoreIs431) {
  Limits limits;
  expect_served(request_with_fields(2000, limits.max_header_fields), limits);
  expect_refused(request_with_fields(2000, limits.max_header_fields + 1), detail::kTooManyFields);
}

TEST(Limits, ContentLengthOverTheCapIs413BeforeTheBody) {
  Limits limits;
  limits.max_body = 100;
  std::string head = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ";
  expect_served(head + "100\r\n\r\n" + std::string(100, 'x'), limits);
  // Refused on the head alone: no byte of the body was sent.
  expect_refused(head + "101\r\n\r\n", detail::kBodyTooLarge, limits);
}

TEST(Limits, DefaultBodyCapIsOneMiB) {
  std::string head = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ";
  expect_refused(head + std::to_string(1024 * 1024 + 1) + "\r\n\r\n", detail::kBodyTooLarge);
}

TEST(Limits, ChunkedBodyOverTheCapIs413AtTheSizeLine) {
  Limits limits;
  limits.max_body = 100;
  std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string fifty(50, 'x');
  expect_served(head + "32\r\n" + fifty + "\r\n32\r\n" + fifty + "\r\n0\r\n\r\n", limits);
  // 50 + 51 > 100: refused at the second size line, before its data.
  expect_refused(head + "32\r\n" + fifty + "\r\n33\r\n", detail::kBodyTooLarge, limits);
  // A size too large for any integer is the same refusal, not an overflow.
  expect_refused(head + "ffffffffffffffffffffffff\r\n", detail::kBodyTooLarge, limits);
}

TEST(Limits, ChunkSizeLineIsBounded) {
  Limits limits;
  std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string ext = ";" + std::string(limits.max_chunk_line, 'e');
  expect_refused(head + "1" + ext + "\r\nx\r\n0\r\n\r\n", detail::kChunkLineTooLong);
}

TEST(Limits, TrailerSectionIsBoundedLikeTheHeader) {
  Limits limits;
  std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  expect_refused(head + "T: " + std::string(limits.max_header_bytes, 't') + "\r\n\r\n",
                 detail::kHeaderTooLarge);
}

TEST(Limits, MaxRequestsPerConnectionClosesAfterTheLast) {
  Limits limits;
  limits.max_requests_per_connection = 3;
  std::string four;
  for (int i = 0; i < 4; ++i) four += "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\n\r\n";
  test::Fed fed = serve(echo, four, limits);
  std::vector<test::Parsed> all = parse_responses(fed.out);
  ASSERT_EQ(all.size(), 3u);  // the fourth request is never answered
  EXPECT_FALSE(all[0].closes());
  EXPECT_FALSE(all[1].closes());
  EXPECT_TRUE(all[2].closes());
  EXPECT_EQ(fed.status, SessionStatus::kCloseAfterWrite);
}

TEST(HeaderDeadline, PendingFromTheFirstByteUntilTheHeaderEnds) {
  ServerSession s(test::echo_handler());
  std::string out;
  EXPECT_FALSE(s.header_pending());
  EXPECT_TRUE(s.idle());
  auto before = ServerSession::Clock::now();
  s.on_data("GE", out);
  auto after = ServerSession::Clock::now();
  EXPECT_TRUE(s.header_pending());
  EXPECT_FALSE(s.idle());
  EXPECT_GE(s.header_started(), before);
  EXPECT_LE(s.header_started(), after);
  EXPECT_EQ(s.header_deadline(), s.header_started() + Limits{}.header_timeout);

  // Later pieces do not move the start: the deadline runs from the first byte.
  auto first = s.header_started();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  s.on_data("T / HTTP/1.1\r\nHost:", out);
  EXPECT_EQ(s.header_started(), first);

  s.on_data(" a\r\n\r\n", out);
  EXPECT_FALSE(s.header_pending());
  EXPECT_TRUE(s.idle());
  EXPECT_EQ(only_response(out).status, 200);
}

TEST(HeaderDeadline, NotPendingWhileABodyIsRead) {
  ServerSession s(test::echo_handler());
  std::string out;
  s.on_data("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab", out);
  EXPECT_FALSE(s.header_pending());
  EXPECT_FALSE(s.idle());
}

TEST(HeaderDeadline, TimeoutAnswers408AndCloses) {
  ServerSession s(test::echo_handler());
  std::string out;
  s.on_data("GET / HTTP/1.1\r\nHo", out);
  EXPECT_EQ(s.on_header_timeout(out), SessionStatus::kCloseAfterWrite);
  test::Parsed p = only_response(out);
  EXPECT_EQ(p.status, 408);
  EXPECT_TRUE(p.closes());
  EXPECT_TRUE(s.closed());
}

TEST(HeaderDeadline, TimeoutWithoutAPendingHeaderDoesNothing) {
  ServerSession s(test::echo_handler());
  std::string out;
  s.on_data("GET / HTTP/1.1\r\nHost: a\r\n\r\n", out);
  out.clear();
  EXPECT_EQ(s.on_header_timeout(out), SessionStatus::kKeepReading);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(s.closed());
}

}  // namespace
}  // namespace mpg::http
