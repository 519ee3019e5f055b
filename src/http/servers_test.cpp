// servers_test.cpp: one suite, run against each of the three servers (goroutine, reactor,
// hybrid), through real sockets with a plain blocking client.
#include <gtest/gtest.h>

#include "http/servers_test_util.hpp"
#include "http/test_support.hpp"
#include "mpg/kit/http_metrics.hpp"
#include "mpg/kit/registry.hpp"

namespace mpg::http {
namespace {

using namespace testing;

class Servers : public ::testing::TestWithParam<Model> {};

TEST_P(Servers, PlaintextAndHeaders) {
  Running s(GetParam());
  Client c(s.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(get("/plaintext")));
  auto r = c.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "Hello, World!");
  EXPECT_EQ(r->header("Content-Type"), "text/plain");
  EXPECT_EQ(r->header("Server"), "mpg");
  EXPECT_EQ(r->header("Date").size(), 29u);  // IMF-fixdate
}

TEST_P(Servers, RemoteIpReachesEveryRequest) {
  Running s(GetParam());
  Client c(s.port());
  for (int i = 0; i < 3; i++) {
    ASSERT_TRUE(c.send(get("/ip")));
    auto r = c.response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "127.0.0.1");
  }
}

// The connection hooks: a limit of two open connections refuses the third at once, and admits
// again once one has closed; every admitted connection is closed exactly once.
TEST_P(Servers, ConnectionHooksLimitAndBalance) {
  std::atomic<int> open{0}, opened{0}, closed{0};
  {
    Running s(GetParam(), {}, 2, [&](ServerOptions& o) {
      o.on_open = [&] {
        if (open.fetch_add(1) >= 2) {
          open.fetch_sub(1);
          return false;
        }
        opened++;
        return true;
      };
      o.on_close = [&] {
        open.fetch_sub(1);
        closed++;
      };
    });
    auto a = std::make_unique<Client>(s.port());
    Client b(s.port());
    for (Client* c : {a.get(), &b}) {
      ASSERT_TRUE(c->send(get("/plaintext")));
      ASSERT_TRUE(c->response());
    }
    Client third(s.port());
    EXPECT_TRUE(third.eof(2000ms));  // refused: closed without a response
    a.reset();                       // frees a slot
    bool served = false;
    for (int i = 0; i < 50 && !served; i++) {
      Client again(s.port());
      served = again.send(get("/plaintext")) && again.response().has_value();
      if (!served) std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(served);
  }
  EXPECT_EQ(opened.load(), closed.load());
  EXPECT_EQ(open.load(), 0);
}

// A request and the client's FIN arrive together: the response comes, then the server closes
// (a server that stops reading after a short read must still notice the queued FIN).
TEST_P(Servers, RequestThenFinGetsResponseThenClose) {
  Running s(GetParam());
  for (int i = 0; i < 20; i++) {
    Client c(s.port());
    ASSERT_TRUE(c.send(get("/plaintext")));
    c.close_write();
    auto r = c.response();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(c.eof(2000ms)) << i;
  }
}

// Hybrid: clients hanging up on idle connections are closed by the loop itself, with no
// goroutine each (a mass disconnect otherwise spawns a goroutine per connection at once, and the
// runtime's pool keeps their stacks: the soak's RSS after 10,000 closes); a request sent just
// before the FIN is still answered (RequestThenFinGetsResponseThenClose, all servers).
TEST(HybridHangup, IdleHangupsAreClosedWithoutAGoroutineEach) {
  constexpr int kConns = 200;
  std::atomic<int> closed{0};
  Running s(Model::Hybrid, {}, 1, [&](ServerOptions& o) { o.on_close = [&] { closed++; }; },
            [](Router& r) {
              r.get("/spawned", [](const Request&, Response& res) { res.text(std::to_string(mpg::stats().spawned)); });
            });
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < kConns; i++) {
    idle.push_back(std::make_unique<Client>(s.port()));
    ASSERT_TRUE(idle.back()->send(get("/plaintext")));
    ASSERT_TRUE(idle.back()->response()) << i;
  }
  Client probe(s.port());
  auto spawned = [&] {
    EXPECT_TRUE(probe.send(get("/spawned")));
    auto r = probe.response();
    return r ? std::stoull(r->body) : 0ull;
  };
  std::this_thread::sleep_for(50ms);  // every burst goroutine has gone idle
  unsigned long long before = spawned();
  idle.clear();  // 200 FINs
  for (int i = 0; i < 200 && closed.load() < kConns; i++) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(closed.load(), kConns);
  unsigned long long after = spawned();
  // The probe's own request is one goroutine; a goroutine per hang-up would be 200 more.
  EXPECT_LE(after - before, 5u) << "goroutines spawned for " << kConns << " hang-ups";
}

TEST_P(Servers, KeepAliveThousandRequests) {
  Running s(GetParam());
  Client c(s.port());
  for (int i = 0; i < 1000; i++) {
    ASSERT_TRUE(c.send(get("/n/" + std::to_string(i))));
    auto r = c.response();
    ASSERT_TRUE(r) << i;
    ASSERT_EQ(r->body, std::to_string(i));
  }
}

TEST_P(Servers, HundredPipelinedInOneWriteAnsweredInOrder) {
  Running s(GetParam());
  Client c(s.port());
  std::string all;
  for (int i = 0; i < 100; i++) all += get("/n/" + std::to_string(i));
  ASSERT_TRUE(c.send(all));
  for (int i = 0; i < 100; i++) {
    auto r = c.response();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, std::to_string(i));
  }
}

TEST_P(Servers, MebibyteBodiesPlainAndChunked) {
  Running s(GetParam());
  Client c(s.port());
  std::string body(1 << 20, '\0');
  for (std::size_t i = 0; i < body.size(); i++) body[i] = char('a' + i % 26);
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body));
  auto r = c.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body == body);
  // Chunked, with chunk extensions and a trailer; the last byte of the cap goes in a tiny chunk.
  std::string req = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::size_t off = 0;
  for (std::size_t n : {std::size_t(700000), body.size() - 700000 - 1, std::size_t(1)}) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "%zx;ext=1", n);
    req += std::string(hex) + "\r\n" + body.substr(off, n) + "\r\n";
    off += n;
  }
  req += "0\r\nX-Trailer: yes\r\n\r\n";
  ASSERT_TRUE(c.send(req));
  r = c.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body == body);
}

TEST_P(Servers, OneByteAtATime) {
  Running s(GetParam());
  Client c(s.port());
  std::string req = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" + get("/n/7");
  for (char ch : req) ASSERT_TRUE(c.send(std::string_view(&ch, 1)));
  auto r = c.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "hello");
  r = c.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "7");
}

// A request whose bytes arrive around a TCP urgent byte: a read stops short at the urgent mark
// with the rest queued, and when one poll saw both segments no edge comes for the rest, so a
// server that takes the short read for an empty socket would wait until its header deadline
// (see the read hint, docs/net.md). Whether the server polls between the two segments is up to
// timing, so the exchange runs 20 times: each request's read is short and re-arms the hint.
TEST_P(Servers, RequestAroundAnUrgentByteIsAnswered) {
  Running s(GetParam());
  Client c(s.port());
  ASSERT_TRUE(c.send(get("/n/0")));  // a short read first: the hint is armed
  auto r = c.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "0");
  for (int i = 1; i <= 20; i++) {
    std::string req = get("/n/" + std::to_string(i));
    ASSERT_TRUE(c.send_around_urgent(req.substr(0, 10), '!', req.substr(10)));
    r = c.response();
    ASSERT_TRUE(r) << "round " << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, std::to_string(i));
  }
}

TEST_P(Servers, SmugglingShapeRefusedAndClosed) {
  Running s(GetParam());
  Client c(s.port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
  auto r = c.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->header("Connection"), "close");
  EXPECT_TRUE(c.eof(2000ms));
}

TEST_P(Servers, ThrowingHandlerGets500AndConnectionLives) {
  Running s(GetParam());
  Client c(s.port());
  ASSERT_TRUE(c.send(get("/throw") + get("/plaintext")));
  auto r = c.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  r = c.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// Slowloris: a header that never ends gets 408 and a close once the header deadline passes
// (the hybrid checks once a second, so it may take up to a second longer).
TEST_P(Servers, HeaderDeadlineClosesSlowloris) {
  Limits lim;
  lim.header_timeout = 300ms;
  Running s(GetParam(), lim);
  Client c(s.port());
  auto t0 = Clock::now();
  ASSERT_TRUE(c.send("GET /plaintext HTTP/1.1\r\nHost: t\r\n"));
  for (int i = 0; i < 5; i++) {
    std::this_thread::sleep_for(50ms);
    c.send("X-Drip: 1\r\n");
  }
  auto r = c.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(c.eof(2000ms));
  auto took = Clock::now() - t0;
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 2500ms);
}

TEST_P(Servers, IdleKeepAliveConnectionClosed) {
  Limits lim;
  lim.idle_timeout = 200ms;
  Running s(GetParam(), lim);
  Client c(s.port());
  ASSERT_TRUE(c.send(get("/plaintext")));
  ASSERT_TRUE(c.response());
  EXPECT_TRUE(c.eof(3000ms));
}

// 200 concurrent clients x 50 requests, every response checked.
TEST_P(Servers, TwoHundredClientsFiftyRequestsEach) {
  Running s(GetParam());
  constexpr int kThreads = 8, kConnsPerThread = 25, kRequests = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++)
    ts.emplace_back([&, t] {
      std::vector<std::unique_ptr<Client>> cs;
      for (int i = 0; i < kConnsPerThread; i++) cs.push_back(std::make_unique<Client>(s.port()));
      for (int k = 0; k < kRequests; k++)
        for (int i = 0; i < kConnsPerThread; i++) {
          std::string want = std::to_string(t * 100000 + i * 100 + k);
          if (!cs[std::size_t(i)]->send(get("/n/" + want))) continue;
          auto r = cs[std::size_t(i)]->response();
          if (r && r->body == want) ok++;
        }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), kThreads * kConnsPerThread * kRequests);
}

// Graceful shutdown under load: every response the clients get is whole and in order, requests
// in progress finish, the server is gone within the grace period, and new connections fail.
TEST_P(Servers, GracefulShutdownUnderLoad) {
  auto s = std::make_unique<Running>(GetParam());
  std::uint16_t port = s->port();
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, broken{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++)
    ts.emplace_back([&, t] {
      int seq = 0;
      while (!stop.load()) {
        Client c(port);
        if (!c.connected()) break;  // refused: the server has stopped listening
        for (int k = 0; k < 20 && !stop.load(); k++) {
          std::string want = std::to_string(t * 1000000 + seq++);
          if (!c.send(get(k % 5 == 0 ? "/slow" : "/n/" + want))) break;
          auto r = c.response();
          if (!r) break;  // closed between requests: allowed
          if (r->status != 200 || (k % 5 != 0 && r->body != want) || (k % 5 == 0 && r->body != "slow")) broken++;
          else answered++;
        }
      }
    });
  std::this_thread::sleep_for(300ms);
  auto took = s->stop(2000ms);
  stop = true;
  for (auto& t : ts) t.join();
  EXPECT_GT(answered.load(), 20);
  EXPECT_EQ(broken.load(), 0);
  EXPECT_LT(took, 2500ms);
  EXPECT_EQ(s->stats().open, 0u);
  Client late(port);
  EXPECT_FALSE(late.connected());
}

// A streamed response: chunked to HTTP/1.1 (RFC 9112 §7.1), the connection kept; to HTTP/1.0,
// the body as it is and the close as its end (RFC 9112 §6.1, §6.3).
TEST_P(Servers, StreamedResponseChunkedOrCloseDelimited) {
  Running s(GetParam());
  Client c(s.port());
  ASSERT_TRUE(c.send(get("/stream/3") + get("/plaintext")));
  auto raw = c.until("\r\n0\r\n\r\n");
  ASSERT_TRUE(raw);
  EXPECT_EQ(test::normalize_date(*raw),
            "HTTP/1.1 200 OK\r\nServer: mpg\r\nDate: <date>\r\nContent-Type: text/plain\r\n"
            "Transfer-Encoding: chunked\r\n\r\n8\r\npiece 0\n\r\n8\r\npiece 1\n\r\n8\r\npiece 2\n"
            "\r\n0\r\n\r\n");
  auto r = c.response();  // the connection goes on after the last-chunk
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "Hello, World!");
  Client old(s.port());
  ASSERT_TRUE(old.send("GET /stream/2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  auto all = old.to_eof();
  ASSERT_TRUE(all);
  EXPECT_EQ(test::normalize_date(*all),
            "HTTP/1.1 200 OK\r\nServer: mpg\r\nDate: <date>\r\nContent-Type: text/plain\r\n"
            "Connection: close\r\n\r\npiece 0\npiece 1\n");
}

// Routing decodes each segment after the split (RFC 3986 §2.1): "%2F" stays inside the
// parameter; a malformed escape is 400 and the connection serves on.
TEST_P(Servers, PercentDecodedRoutingAndMalformedEscapes) {
  Running s(GetParam());
  Client c(s.port());
  ASSERT_TRUE(c.send(get("/n/a%2Fb%20c") + get("/n/%G1") + get("/n/7")));
  auto r = c.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "a/b c");
  r = c.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->header("Connection"), "");
  r = c.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "7");
}

// /metrics counts requests by the pattern that matched, never the path.
TEST_P(Servers, MetricsAreLabelledByRoute) {
  kit::Registry registry;
  kit::HttpMetrics metrics(registry, {.buckets = {10}});
  Running s(GetParam(), {}, 2, {}, [&](Router& router) {
    router.use(metrics.middleware());
    router.get("/metrics", registry.handler());
  });
  Client c(s.port());
  ASSERT_TRUE(c.send(get("/n/1") + get("/n/2") + get("/n/x%2Fy") + get("/missing") + get("/stream/1")));
  for (int i = 0; i < 4; i++) ASSERT_TRUE(c.response()) << i;
  ASSERT_TRUE(c.until("\r\n0\r\n\r\n"));
  ASSERT_TRUE(c.send(get("/metrics")));
  auto r = c.response();
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("http_requests_total{code=\"200\",method=\"GET\",route=\"/n/{i}\"} 3\n"),
            std::string::npos) << r->body;
  EXPECT_NE(r->body.find("http_requests_total{code=\"404\",method=\"GET\",route=\"unmatched\"} 1\n"),
            std::string::npos) << r->body;
  EXPECT_NE(r->body.find("http_requests_total{code=\"200\",method=\"GET\",route=\"/stream/{n}\"} 1\n"),
            std::string::npos) << r->body;
  EXPECT_NE(r->body.find("http_request_duration_seconds_count{route=\"/n/{i}\"} 3\n"),
            std::string::npos) << r->body;
  EXPECT_EQ(r->body.find("/n/1"), std::string::npos);  // no path became a label
}

INSTANTIATE_TEST_SUITE_P(Models, Servers, ::testing::Values(Model::Goroutine, Model::Reactor, Model::Hybrid),
                         [](const ::testing::TestParamInfo<Model>& i) { return std::string(model_name(i.param)); });

// The three servers answer the same requests with the same bytes (Date aside).
TEST(ServersAgree, ByteIdenticalResponses) {
  std::string reqs = get("/plaintext") + get("/n/42") + get("/missing") +
                     "POST /plaintext HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n" +
                     "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc" +
                     get("/throw") +
                     "GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  std::vector<std::string> outs;
  for (Model m : {Model::Goroutine, Model::Reactor, Model::Hybrid}) {
    Running s(m);
    Client c(s.port());
    ASSERT_TRUE(c.send(reqs));
    std::string all;
    while (auto r = c.response()) {
      std::string raw = r->raw;
      auto p = raw.find("\r\nDate: ");
      if (p != std::string::npos) raw.replace(p + 8, 29, "<date>");
      all += raw;
      if (r->header("Connection") == "close") break;
    }
    outs.push_back(all);
  }
  ASSERT_FALSE(outs[0].empty());
  EXPECT_EQ(outs[0], outs[1]);
  EXPECT_EQ(outs[0], outs[2]);
}

// Streamed, decoded and refused-escape responses are the same bytes from all three servers, and
// so is the close-delimited body an HTTP/1.0 client gets.
TEST(ServersAgree, StreamedAndDecodedByteIdentical) {
  std::string reqs = get("/stream/3") + get("/n/a%2Fb") + get("/n/%zz") +
                     "HEAD /stream/2 HTTP/1.1\r\nHost: t\r\n\r\n" + "GET /stream/2 HTTP/1.0\r\n\r\n";
  std::vector<std::string> outs;
  for (Model m : {Model::Goroutine, Model::Reactor, Model::Hybrid}) {
    Running s(m);
    Client c(s.port());
    ASSERT_TRUE(c.send(reqs));
    auto all = c.to_eof();  // the last response ends with the close
    ASSERT_TRUE(all) << model_name(m);
    outs.push_back(test::normalize_date(*all));
  }
  EXPECT_NE(outs[0].find("\r\n\r\npiece 0\npiece 1\n"), std::string::npos) << outs[0];
  EXPECT_EQ(outs[0], outs[1]);
  EXPECT_EQ(outs[0], outs[2]);
}

}  // namespace
}  // namespace mpg::http
