// servers_test.cpp: one suite, run against each of the three servers (goroutine, reactor,
// hybrid), through real sockets with a plain blocking client.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mpg/http/request.hpp"
#include "mpg/http/response.hpp"
#include "mpg/http/router.hpp"
#include "mpg/http/server.hpp"
#include "mpg/mpg.hpp"

namespace mpg::http {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Routes every test uses.
void add_routes(Router& r) {
  r.get("/plaintext", [](const Request&, Response& res) { res.text("Hello, World!"); });
  r.get("/n/{i}", [](const Request& req, Response& res) { res.text(req.param("i")); });
  r.post("/echo", [](const Request& req, Response& res) { res.text(req.body); });
  r.get("/throw", [](const Request&, Response&) -> void { throw std::runtime_error("boom"); });
  r.get("/slow", [](const Request&, Response& res) {
    std::this_thread::sleep_for(50ms);  // a handler busy for a while (any model: blocks its thread)
    res.text("slow");
  });
}

// Running: a server of one model inside its own mpg::run on a background thread.
class Running {
 public:
  Running(Model model, Limits limits = {}, int loops = 2) : model_(model) {
    add_routes(router_);
    std::promise<std::uint16_t> port;
    auto port_f = port.get_future();
    thread_ = std::thread([this, limits, loops, &port] {
      mpg::Config cfg;
      cfg.procs = 2;
      mpg::run([&] {
        ServerOptions opt;
        opt.limits = limits;
        opt.loops = loops;
        const Handler& h = router_.handler();
        std::optional<GoroutineServer> g;
        std::optional<ReactorServer> r;
        std::optional<HybridServer> y;
        std::uint16_t p = 0;
        switch (model_) {
          case Model::Goroutine: g.emplace(h, opt); g->start(); p = g->port(); break;
          case Model::Reactor: r.emplace(h, opt); r->start(); p = r->port(); break;
          case Model::Hybrid: y.emplace(h, opt); y->start(); p = y->port(); break;
        }
        port.set_value(p);
        auto grace = mpg::blocking([&] { return stop_.get_future().get(); });
        shutdown_began_ = Clock::now();
        if (g) g->shutdown(grace), stats_ = g->stats();
        if (r) r->shutdown(grace), stats_ = r->stats();
        if (y) y->shutdown(grace), stats_ = y->stats();
      }, cfg);
    });
    port_ = port_f.get();
  }
  ~Running() { stop(0ms); }
  std::uint16_t port() const { return port_; }
  // stop: graceful shutdown with `grace`; returns how long it took.
  std::chrono::nanoseconds stop(std::chrono::milliseconds grace) {
    if (!thread_.joinable()) return {};
    stop_.set_value(grace);
    thread_.join();
    return Clock::now() - shutdown_began_;
  }
  const ServerStats& stats() const { return stats_; }

 private:
  Model model_;
  Router router_;
  std::thread thread_;
  std::promise<std::chrono::milliseconds> stop_;
  std::uint16_t port_ = 0;
  Clock::time_point shutdown_began_;
  ServerStats stats_;
};

struct Resp {
  int status = 0;
  std::string head;  // status line and fields
  std::string body;
  std::string raw;
  std::string header(std::string_view name) const {
    std::string key = "\r\n" + std::string(name) + ": ";
    auto p = head.find(key);
    if (p == std::string::npos) return "";
    auto e = head.find("\r\n", p + key.size());
    return head.substr(p + key.size(), e - p - key.size());
  }
};

// Client: a blocking socket with a receive timeout, and a parser for the responses it reads.
class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  bool send(std::string_view s) {
    while (!s.empty()) {
      ssize_t k = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      if (k <= 0) return false;
      s.remove_prefix(std::size_t(k));
    }
    return true;
  }
  // response: the next whole response (Content-Length framing), or nullopt on EOF/timeout.
  std::optional<Resp> response() {
    for (;;) {
      auto he = buf_.find("\r\n\r\n");
      if (he != std::string::npos) {
        Resp r;
        r.head = buf_.substr(0, he);
        r.status = std::atoi(r.head.c_str() + 9);
        std::string cl = r.header("Content-Length");
        std::size_t n = cl.empty() ? 0 : std::stoul(cl);
        if (buf_.size() >= he + 4 + n) {
          r.body = buf_.substr(he + 4, n);
          r.raw = buf_.substr(0, he + 4 + n);
          buf_.erase(0, he + 4 + n);
          return r;
        }
      }
      char tmp[65536];
      ssize_t k = ::recv(fd_, tmp, sizeof tmp, 0);
      if (k <= 0) return std::nullopt;
      buf_.append(tmp, std::size_t(k));
    }
  }
  // eof: the server closed the connection within `within` (and sent nothing more).
  bool eof(std::chrono::milliseconds within) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, int(within.count())) <= 0) return false;
    char c;
    return ::recv(fd_, &c, 1, 0) <= 0;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

std::string get(std::string_view path) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n\r\n";
}

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

}  // namespace
}  // namespace mpg::http
