// session_test.cpp: ServerSession's contract with transports and handlers: keep-alive, pipelining
// into one output, large and chunked bodies across reads, HEAD, 100-continue, handler failures,
// and the exact bytes of a response.
#include <gtest/gtest.h>

#include <stdexcept>

#include "http/test_support.hpp"
#include "mpg/http/router.hpp"

namespace mpg::http {
namespace {

using test::echo;
using test::normalize_date;
using test::only_response;
using test::parse_responses;
using test::serve;

void hello(const Request&, Response& res) { res.text("Hello, World!"); }

constexpr std::string_view kGet = "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";

TEST(Session, ResponseBytesAreExact) {
  test::Fed fed = serve(hello, kGet);
  EXPECT_EQ(normalize_date(fed.out),
            "HTTP/1.1 200 OK\r\nServer: mpg\r\nDate: <date>\r\nContent-Type: text/plain\r\n"
            "Content-Length: 13\r\n\r\nHello, World!");
}

TEST(Session, KeepAliveServesAThousandRequestsInOrder) {
  ServerSession s(test::echo_handler());
  for (int i = 0; i < 1000; ++i) {
    std::string out;
    std::string req = "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\n\r\n";
    ASSERT_EQ(s.on_data(req, out), SessionStatus::kKeepReading);
    test::Parsed p = only_response(out);
    ASSERT_EQ(p.status, 200);
    ASSERT_EQ(p.body.rfind("GET /" + std::to_string(i) + " ", 0), 0u);
  }
  EXPECT_EQ(s.requests(), 1000u);
}

TEST(Session, HundredPipelinedRequestsGiveHundredResponsesInOneOutput) {
  std::string in;
  for (int i = 0; i < 100; ++i) in += "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\n\r\n";
  ServerSession s(test::echo_handler());
  std::string out;
  ASSERT_EQ(s.on_data(in, out), SessionStatus::kKeepReading);  // one call: one write
  std::vector<test::Parsed> all = parse_responses(out);
  ASSERT_EQ(all.size(), 100u);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(all[i].body.rfind("GET /" + std::to_string(i) + " ", 0), 0u) << i;
}

TEST(Session, OutputIsAppendedNotReplaced) {
  const Handler h = hello;
  ServerSession s(h);
  std::string out = "previous";
  s.on_data(kGet, out);
  EXPECT_EQ(out.rfind("previousHTTP/1.1 200 OK\r\n", 0), 0u);
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = char('a' + (i * 7 + i / 251) % 26);
  return s;
}

// body_of: a handler that answers with the request body, so the test sees it byte for byte.
void body_of(const Request& r, Response& res) { res.text(r.body); }

TEST(Session, OneMiBContentLengthBodyAcrossReads) {
  const std::string body = pattern(1024 * 1024);
  std::string in =
      "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  for (std::vector<std::size_t> split : {std::vector<std::size_t>{}, {65536}, {1000, 7, 4093}}) {
    test::Fed fed = serve(body_of, in, {}, split);
    test::Parsed p = only_response(fed.out);
    EXPECT_EQ(p.status, 200);
    EXPECT_TRUE(p.body == body) << "split " << (split.empty() ? 0 : split[0]);
  }
}

TEST(Session, OneMiBChunkedBodyWithExtensionsAndTrailers) {
  const std::string body = pattern(1024 * 1024);
  std::string in = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  char size[32];
  for (std::size_t at = 0, n = 1; at < body.size(); at += n, n = n * 3 % 70001 + 1) {
    n = std::min(n, body.size() - at);
    std::snprintf(size, sizeof size, "%zx", n);
    in += std::string(size) + ";ext=" + std::to_string(at) + ";q=\"x\"\r\n" + body.substr(at, n) +
          "\r\n";
  }
  in += "0;end\r\nChecksum: abc\r\nExpires: never\r\n\r\n";
  for (std::vector<std::size_t> split : {std::vector<std::size_t>{}, {65536}, {3, 1, 4096}}) {
    test::Fed fed = serve(body_of, in, {}, split);
    test::Parsed p = only_response(fed.out);
    EXPECT_EQ(p.status, 200);
    EXPECT_TRUE(p.body == body);
  }
}

TEST(Session, HeadersStayValidWhenTheBodyArrivesInALaterRead) {
  ServerSession s(test::echo_handler());
  // Each piece lives in its own buffer, destroyed after its call (ASan would see a stale view).
  test::Fed first = test::feed_pieces(
      s, "POST /p?q=1 HTTP/1.1\r\nHost: a\r\nX-Long: value\r\nContent-Length: 4\r\n\r\nab");
  EXPECT_TRUE(first.out.empty());
  test::Fed rest = test::feed_pieces(s, "cd");
  test::Parsed p = only_response(rest.out);
  EXPECT_EQ(p.body,
            "POST /p?q=1 path=/p query=q=1 1.1 keep\nHost: [a]\nX-Long: [value]\n"
            "Content-Length: [4]\nbody=abcd");
}

TEST(Session, HeadHasTheSameFieldsAsGetAndNoBody) {
  Router r;
  r.get("/plaintext", hello);
  test::Fed get = serve(r.handler(), kGet);
  test::Fed head = serve(r.handler(),
                         "HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"
                         "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
  const std::string head_only = head.out.substr(0, head.out.find("\r\n\r\n") + 4);
  EXPECT_EQ(normalize_date(head_only), normalize_date(only_response(get.out).head));
  EXPECT_NE(head_only.find("\r\nContent-Length: 13\r\n"), std::string::npos);
  // The next response starts right after the HEAD response's empty line: no body was sent.
  EXPECT_EQ(normalize_date(head.out.substr(head_only.size())), normalize_date(get.out));
}

TEST(Session, HandlerThatThrowsGets500AndTheConnectionLivesOn) {
  auto h = [](const Request& r, Response& res) {
    res.set_header("X-Partial", "1");
    if (r.path == "/boom") throw std::runtime_error("boom");
    res.text("ok");
  };
  test::Fed fed =
      serve(h, "GET /boom HTTP/1.1\r\nHost: a\r\n\r\nGET /fine HTTP/1.1\r\nHost: a\r\n\r\n");
  std::vector<test::Parsed> all = parse_responses(fed.out);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].status, 500);
  EXPECT_FALSE(all[0].closes());
  EXPECT_EQ(all[0].field("X-Partial"), "");  // nothing of the failed attempt leaks out
  EXPECT_EQ(all[1].status, 200);
  EXPECT_EQ(all[1].body, "ok");
  EXPECT_EQ(fed.status, SessionStatus::kKeepReading);
}

TEST(Session, InvalidStatusFromAHandlerIs500) {
  for (int code : {0, 101, 600}) {
    test::Fed fed = serve([code](const Request&, Response& res) { res.status = code; }, kGet);
    EXPECT_EQ(only_response(fed.out).status, 500) << code;
  }
}

TEST(Session, ManagedOrUnsafeFieldsFromAHandlerAre500) {
  for (auto [name, value] : {std::pair{"Content-Length", "5"},
                             {"connection", "close"},
                             {"X-Split", "a\r\nInjected: 1"},
                             {"Bad Name", "v"},
                             {"Date", "x"}}) {
    test::Fed fed =
        serve([&](const Request&, Response& res) { res.set_header(name, value); }, kGet);
    test::Parsed p = only_response(fed.out);
    EXPECT_EQ(p.status, 500) << name;
    EXPECT_EQ(p.field("Injected"), "");
  }
}

TEST(Session, HandlerCanAskToClose) {
  test::Fed fed = serve([](const Request&, Response& res) { res.close_connection(); },
                        std::string(kGet) + std::string(kGet));
  test::Parsed p = only_response(fed.out);
  EXPECT_TRUE(p.closes());
  EXPECT_EQ(fed.status, SessionStatus::kCloseAfterWrite);
}

TEST(Session, NoContentAndNotModifiedCarryNoLengthOrBody) {
  for (int code : {204, 304}) {
    test::Fed fed = serve(
        [code](const Request&, Response& res) {
          res.status = code;
          res.body = "ignored";
        },
        std::string(kGet) + std::string(kGet));
    std::vector<test::Parsed> all = parse_responses(fed.out);
    ASSERT_EQ(all.size(), 2u) << code;
    EXPECT_EQ(all[0].field("Content-Length"), "");
    EXPECT_EQ(all[0].body, "");
  }
}

TEST(Session, SetHeaderReplacesAddHeaderAppends) {
  test::Fed fed = serve(
      [](const Request&, Response& res) {
        res.set_header("X-A", "1");
        res.add_header("Set-Cookie", "a=1");
        res.add_header("Set-Cookie", "b=2");
        res.set_header("x-a", "2");
        EXPECT_EQ(res.header("X-A"), "2");
      },
      kGet);
  std::string head = only_response(fed.out).head;
  EXPECT_NE(head.find("Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nx-a: 2\r\n"), std::string::npos)
      << head;
  EXPECT_EQ(head.find("X-A: 1"), std::string::npos);
}

TEST(Session, DateFieldIsAnImfFixdate) {
  test::Fed fed = serve(hello, kGet);
  std::string date = only_response(fed.out).field("Date");
  ASSERT_EQ(date.size(), kHttpDateLength);
  EXPECT_EQ(date.substr(3, 2), ", ");
  EXPECT_EQ(date.substr(25), " GMT");
}

}  // namespace
}  // namespace mpg::http
