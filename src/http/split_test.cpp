// split_test.cpp: the property every transport relies on: a session's output depends on the
// bytes it was given, not on how they were split into reads. Over a corpus of valid, invalid and
// pipelined requests, fed whole, a byte at a time and in random pieces (seeded), with default
// and with tiny limits (so refusals fall at piece boundaries), the outputs must be identical.
// The echo handler dumps every parsed part of each request, so equal outputs mean equal parses.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "http/test_support.hpp"

namespace mpg::http {
namespace {

using test::echo;
using test::normalize_date;
using test::serve;

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> c = [] {
    std::vector<std::string> v = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\nAccept: text/plain,text/html;q=0.9,"
        "application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\nConnection: "
        "keep-alive\r\n\r\n",
        "\r\nGET /kv/a?x=1 HTTP/1.1\r\nHost: a\r\nX:  v \r\nY:\r\n\r\n",
        "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
        "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;a=b\r\nhello\r\n6 ; c\r\n world\r\n0\r\nT: 1\r\nU: 2\r\n\r\n",
        "PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "GET http://h/abs?q HTTP/1.1\r\nHost: h\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        // refused, at every stage of a request
        "GET /\r\nHost: a\r\n\r\n",
        "GE@T / HTTP/1.1\r\n\r\n",
        "FOO / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /{x} HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\na",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\rXabcXY0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: v\r\n w\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nExpect: nothing\r\nContent-Length: 1\r\n\r\nx",
        "GET /" + std::string(200, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(300, 'b') + "\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'c'),
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        "20\r\n" +
            std::string(32, 'd') + "\r\n" + "40\r\n" + std::string(64, 'e') + "\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;" +
            std::string(40, 'x') + "\r\nz\r\n0\r\n\r\n",
    };
    // Pipelined: every valid keep-alive request in a row, then each one followed by a refusal.
    std::string all;
    for (int i = 0; i < 6; ++i) all += v[i];
    v.push_back(all);
    for (std::size_t i = 12; i < 18; ++i) v.push_back(v[0] + v[3] + v[i] + v[0]);
    return v;
  }();
  return c;
}

// tiny_limits: limits small enough that the corpus's long requests hit each of them.
Limits tiny_limits() {
  Limits l;
  l.max_request_line = 64;
  l.max_header_bytes = 256;
  l.max_header_fields = 5;
  l.max_body = 64;
  l.max_chunk_line = 16;
  return l;
}

void check_split_invariance(const Limits& limits) {
  std::mt19937 rng(20240601);  // fixed: a failure reproduces
  for (std::size_t i = 0; i < corpus().size(); ++i) {
    const std::string& in = corpus()[i];
    SCOPED_TRACE("corpus[" + std::to_string(i) + "]");
    const std::string whole = normalize_date(serve(echo, in, limits).out);
    ASSERT_FALSE(whole.empty());
    EXPECT_EQ(normalize_date(serve(echo, in, limits, {1}).out), whole) << "byte at a time";
    for (int round = 0; round < 20; ++round) {
      std::uniform_int_distribution<std::size_t> size(1, round < 10 ? 7 : in.size());
      std::vector<std::size_t> sizes(16);
      for (std::size_t& s : sizes) s = size(rng);
      EXPECT_EQ(normalize_date(serve(echo, in, limits, sizes).out), whole)
          << "pieces " << sizes[0] << "," << sizes[1] << "," << sizes[2] << "...";
    }
  }
}

TEST(SplitInvariance, DefaultLimits) { check_split_invariance(Limits{}); }

TEST(SplitInvariance, TinyLimits) { check_split_invariance(tiny_limits()); }

// The corpus really exercises refusals at both limit settings (else the property is weaker
// than it looks).
TEST(SplitInvariance, CorpusCoversServedAndRefusedRequests) {
  for (const Limits& limits : {Limits{}, tiny_limits()}) {
    std::set<int> statuses;
    for (const std::string& in : corpus()) {
      if (in.rfind("HEAD", 0) == 0) continue;  // its response has a length but no body
      for (const test::Parsed& p : test::parse_responses(serve(echo, in, limits).out))
        statuses.insert(p.status);
    }
    for (int want : {100, 200, 400, 501, 505}) EXPECT_TRUE(statuses.count(want)) << want;
  }
  std::set<int> tiny;
  for (const std::string& in : corpus()) {
    if (in.rfind("HEAD", 0) == 0) continue;
    for (const test::Parsed& p : test::parse_responses(serve(echo, in, tiny_limits()).out))
      tiny.insert(p.status);
  }
  for (int want : {413, 414, 431}) EXPECT_TRUE(tiny.count(want)) << want;
}

}  // namespace
}  // namespace mpg::http
