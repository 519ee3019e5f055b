// chunked_response_test.cpp: streamed responses (Response::write_chunk): the exact bytes of the
// chunked framing (RFC 9112 §7.1), the last-chunk the session appends, HEAD without a body,
// HTTP/1.0 served close-delimited instead (RFC 9112 §6.1, §6.3), 204, a handler that throws
// after writing, keep-alive and pipelining around a chunked response; and the bytes checked
// again by libhttp-parser reading them as a client would.
#include <gtest/gtest.h>
#include <http_parser.h>

#include <stdexcept>
#include <string>

#include "http/test_support.hpp"
#include "mpg/http/router.hpp"

namespace mpg::http {
namespace {

using test::normalize_date;
using test::serve;

// stream: three pieces, with a Content-Type set first.
void stream(const Request&, Response& res) {
  res.set_content_type("text/plain");
  res.write_chunk("Hello, ");
  res.write_chunk("World");
  res.write_chunk("!");
}

constexpr std::string_view kGet = "GET /s HTTP/1.1\r\nHost: a\r\n\r\n";
constexpr std::string_view kStreamed =
    "HTTP/1.1 200 OK\r\nServer: mpg\r\nDate: <date>\r\nContent-Type: text/plain\r\n"
    "Transfer-Encoding: chunked\r\n\r\n7\r\nHello, \r\n5\r\nWorld\r\n1\r\n!\r\n0\r\n\r\n";

// ClientView: what a client reading `bytes` as responses to GET requests sees, by
// libhttp-parser (an independent reading of the framing): each response's status and body, and
// whether the last one ended with the input (a close-delimited body ends only at EOF).
struct ClientView {
  struct One {
    int status = 0;
    std::string body;
    bool chunked = false;
  };
  std::vector<One> responses;
  bool complete = false;  // the last response was complete when the bytes (and EOF) ended
  bool error = false;
};

ClientView read_as_client(std::string_view bytes) {
  struct State {
    ClientView view;
    bool in_message = false;
  } st;
  http_parser p;
  http_parser_init(&p, HTTP_RESPONSE);
  p.data = &st;
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_message_begin = [](http_parser* q) {
    auto* st = static_cast<State*>(q->data);
    st->view.responses.emplace_back();
    st->in_message = true;
    return 0;
  };
  s.on_headers_complete = [](http_parser* q) {
    auto* st = static_cast<State*>(q->data);
    st->view.responses.back().status = int(q->status_code);
    st->view.responses.back().chunked = (q->flags & F_CHUNKED) != 0;
    return 0;
  };
  s.on_body = [](http_parser* q, const char* at, std::size_t n) {
    static_cast<State*>(q->data)->view.responses.back().body.append(at, n);
    return 0;
  };
  s.on_message_complete = [](http_parser* q) {
    static_cast<State*>(q->data)->in_message = false;
    return 0;
  };
  std::size_t n = http_parser_execute(&p, &s, bytes.data(), bytes.size());
  if (n == bytes.size()) http_parser_execute(&p, &s, nullptr, 0);  // EOF
  st.view.error = n != bytes.size() || HTTP_PARSER_ERRNO(&p) != HPE_OK;
  st.view.complete = !st.in_message;
  return st.view;
}

TEST(ChunkedResponse, PiecesBecomeChunksThenTheLastChunk) {
  test::Fed fed = serve(stream, kGet);
  EXPECT_EQ(normalize_date(fed.out), kStreamed);
  EXPECT_EQ(fed.status, SessionStatus::kKeepReading);
  ClientView v = read_as_client(fed.out);
  ASSERT_FALSE(v.error);
  ASSERT_EQ(v.responses.size(), 1u);
  EXPECT_TRUE(v.responses[0].chunked);
  EXPECT_EQ(v.responses[0].body, "Hello, World!");
}

// chunk-size is HEXDIG (RFC 9112 §7.1); an empty piece is no chunk (a size of 0 would end the
// body) but still makes the response chunked.
TEST(ChunkedResponse, SizesAreHexAndEmptyPiecesAreSkipped) {
  const Handler h = [](const Request&, Response& res) {
    res.write_chunk("");
    res.write_chunk(std::string(300, 'x'));
    res.write_chunk("");
  };
  std::string out = normalize_date(serve(h, kGet).out);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nServer: mpg\r\nDate: <date>\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n12c\r\n" + std::string(300, 'x') + "\r\n0\r\n\r\n");
  const Handler nothing = [](const Request&, Response& res) { res.write_chunk(""); };
  EXPECT_EQ(normalize_date(serve(nothing, kGet).out),
            "HTTP/1.1 200 OK\r\nServer: mpg\r\nDate: <date>\r\nTransfer-Encoding: chunked"
            "\r\n\r\n0\r\n\r\n");
}

// RFC 9110 §9.3.2: HEAD gets GET's fields (Transfer-Encoding: chunked included) and no content;
// the connection stays usable, so the next pipelined request is answered after it.
TEST(ChunkedResponse, HeadGetsTheFieldsAndNoBody) {
  Router r;
  r.get("/s", stream);
  std::string out =
      serve(r.handler(), std::string("HEAD /s HTTP/1.1\r\nHost: a\r\n\r\n") + std::string(kGet)).out;
  std::string head(kStreamed.substr(0, kStreamed.find("\r\n\r\n") + 4));
  EXPECT_EQ(normalize_date(out), head + std::string(kStreamed));
}

// RFC 9112 §6.1: no Transfer-Encoding to an HTTP/1.0 request. The body goes as it is, with no
// Content-Length, and the connection closes after it (§6.3 item 8), even if keep-alive was asked.
TEST(ChunkedResponse, Http10GetsTheBodyDelimitedByTheClose) {
  for (std::string_view req : {"GET /s HTTP/1.0\r\n\r\n",
                               "GET /s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"}) {
    SCOPED_TRACE(req);
    test::Fed fed = serve(stream, std::string(req) + std::string(kGet));
    EXPECT_EQ(normalize_date(fed.out),
              "HTTP/1.1 200 OK\r\nServer: mpg\r\nDate: <date>\r\nContent-Type: text/plain\r\n"
              "Connection: close\r\n\r\nHello, World!");
    EXPECT_EQ(fed.status, SessionStatus::kCloseAfterWrite);
    ClientView v = read_as_client(fed.out);
    ASSERT_FALSE(v.error);
    ASSERT_EQ(v.responses.size(), 1u);
    EXPECT_EQ(v.responses[0].body, "Hello, World!");
    EXPECT_TRUE(v.complete);  // at EOF
  }
  test::Fed head = serve(stream, "HEAD /s HTTP/1.0\r\n\r\n");
  EXPECT_EQ(normalize_date(head.out),
            "HTTP/1.1 200 OK\r\nServer: mpg\r\nDate: <date>\r\nContent-Type: text/plain\r\n"
            "Connection: close\r\n\r\n");
  EXPECT_EQ(head.status, SessionStatus::kCloseAfterWrite);
}

// RFC 9110 §8.6, §15.3.5: a 204 has no content, so no framing field either, chunked or not.
TEST(ChunkedResponse, NoContentStatusesStayBare) {
  const Handler h = [](const Request&, Response& res) {
    res.write_chunk("ignored");
    res.status = 204;
  };
  test::Fed fed = serve(h, kGet);
  EXPECT_EQ(normalize_date(fed.out), "HTTP/1.1 204 No Content\r\nServer: mpg\r\nDate: <date>\r\n\r\n");
  EXPECT_EQ(fed.status, SessionStatus::kKeepReading);
  fed = serve(h, "GET /s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");  // nothing to delimit
  EXPECT_EQ(fed.status, SessionStatus::kKeepReading);
}

// Nothing has left when the handler throws (the session does no I/O), so the pieces are dropped
// and the client gets a whole 500; the next response on the connection is not chunked.
TEST(ChunkedResponse, ThrowAfterWritingGetsAClean500) {
  Router r;
  r.get("/boom", [](const Request&, Response& res) {
    res.write_chunk("partial");
    throw std::runtime_error("boom");
  });
  r.get("/plain", [](const Request&, Response& res) { res.text("plain"); });
  test::Fed fed = serve(r.handler(), "GET /boom HTTP/1.1\r\nHost: a\r\n\r\n"
                                     "GET /plain HTTP/1.1\r\nHost: a\r\n\r\n");
  std::vector<test::Parsed> all = test::parse_responses(fed.out);
  ASSERT_EQ(all.size(), 2u) << fed.out;
  EXPECT_EQ(all[0].status, 500);
  EXPECT_EQ(all[0].field("Transfer-Encoding"), "");
  EXPECT_EQ(all[1].body, "plain");
  EXPECT_EQ(all[1].field("Transfer-Encoding"), "");
  EXPECT_EQ(fed.status, SessionStatus::kKeepReading);
}

// Keep-alive and pipelining around chunked responses: a client reads every one, in order.
TEST(ChunkedResponse, PipelinedMixOfChunkedAndWholeResponses) {
  Router r;
  r.get("/s/{n}", [](const Request& q, Response& res) {
    int n = std::stoi(std::string(q.param("n")));
    for (int i = 0; i < n; ++i) res.write_chunk(std::to_string(i) + ";");
  });
  r.get("/whole", [](const Request&, Response& res) { res.text("whole"); });
  std::string in;
  for (int i = 0; i < 10; ++i)
    in += "GET /s/" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\n\r\nGET /whole HTTP/1.1\r\nHost: a\r\n\r\n";
  for (std::vector<std::size_t> split : {std::vector<std::size_t>{}, std::vector<std::size_t>{1},
                                         std::vector<std::size_t>{7, 3, 50}}) {
    test::Fed fed = serve(r.handler(), in, {}, split);
    ClientView v = read_as_client(fed.out);
    ASSERT_FALSE(v.error);
    ASSERT_EQ(v.responses.size(), 20u);
    for (int i = 0; i < 10; ++i) {
      std::string want;
      for (int k = 0; k < i; ++k) want += std::to_string(k) + ";";
      EXPECT_EQ(v.responses[2 * i].chunked, i > 0);  // no piece written: Content-Length: 0
      EXPECT_EQ(v.responses[2 * i].body, want);
      EXPECT_FALSE(v.responses[2 * i + 1].chunked);
      EXPECT_EQ(v.responses[2 * i + 1].body, "whole");
    }
  }
}

// A handler that rewrites `body` after write_chunk is served what is there: pieces past its end
// are cut, bytes after the last piece are one more chunk; the framing stays valid.
TEST(ChunkedResponse, BodyChangedAfterWritingStaysWellFramed) {
  const Handler shrink = [](const Request&, Response& res) {
    res.write_chunk("abc");
    res.write_chunk("def");
    res.body.resize(4);
  };
  EXPECT_EQ(normalize_date(serve(shrink, kGet).out),
            "HTTP/1.1 200 OK\r\nServer: mpg\r\nDate: <date>\r\nTransfer-Encoding: chunked"
            "\r\n\r\n3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n");
  const Handler grow = [](const Request&, Response& res) {
    res.write_chunk("abc");
    res.body += "de";
  };
  EXPECT_EQ(read_as_client(serve(grow, kGet).out).responses.at(0).body, "abcde");
}

}  // namespace
}  // namespace mpg::http
