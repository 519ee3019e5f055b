// servers_test_util.hpp: what the server suites share: a server of any model running in its
// own mpg::run on a background thread, and a plain blocking HTTP client.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mpg/http/request.hpp"
#include "mpg/http/response.hpp"
#include "mpg/http/router.hpp"
#include "mpg/http/server.hpp"
#include "mpg/mpg.hpp"

namespace mpg::http::testing {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Routes every test uses.
inline void add_routes(Router& r) {
  r.get("/plaintext", [](const Request&, Response& res) { res.text("Hello, World!"); });
  r.get("/ip", [](const Request& req, Response& res) { res.text(req.remote_ip); });
  r.get("/n/{i}", [](const Request& req, Response& res) { res.text(req.param("i")); });
  r.get("/stream/{n}", [](const Request& req, Response& res) {  // n pieces, chunked
    res.set_content_type("text/plain");
    for (int i = 0, n = std::atoi(std::string(req.param("n")).c_str()); i < n; i++)
      res.write_chunk("piece " + std::to_string(i) + "\n");
  });
  r.post("/echo", [](const Request& req, Response& res) { res.text(req.body); });
  r.get("/throw", [](const Request&, Response&) -> void { throw std::runtime_error("boom"); });
  r.get("/block", [](const Request&, Response& res) {
    mpg::blocking([] { std::this_thread::sleep_for(1s); });  // a blocking library call
    res.text("blocked");
  });
  r.get("/slow", [](const Request&, Response& res) {
    std::this_thread::sleep_for(50ms);  // a handler busy for a while (any model: blocks its thread)
    res.text("slow");
  });
}

// Running: a server of one model inside its own mpg::run on a background thread. `setup` may add
// middleware or routes to the router (after add_routes).
class Running {
 public:
  Running(Model model, Limits limits = {}, int loops = 2, std::function<void(ServerOptions&)> tweak = {},
          const std::function<void(Router&)>& setup = {})
      : model_(model) {
    add_routes(router_);
    if (setup) setup(router_);
    std::promise<std::uint16_t> port;
    auto port_f = port.get_future();
    thread_ = std::thread([this, limits, loops, tweak, &port] {
      mpg::Config cfg;
      cfg.procs = 2;
      mpg::run([&] {
        ServerOptions opt;
        opt.limits = limits;
        opt.loops = loops;
        if (tweak) tweak(opt);
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
  // close_write: sends a FIN; reading goes on.
  void close_write() { ::shutdown(fd_, SHUT_WR); }
  // reset: closes with SO_LINGER 0, so the server sees a reset instead of a FIN.
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd_);
    fd_ = -1;
  }
  bool send(std::string_view s) {
    while (!s.empty()) {
      ssize_t k = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      if (k <= 0) return false;
      s.remove_prefix(std::size_t(k));
    }
    return true;
  }
  // send_around_urgent: `before`, the urgent (out-of-band) byte `oob`, then `after`. Urgent mode
  // overrides the cork: `before` and `oob` go out at once, `after` right behind. A server reading
  // the stream never sees `oob`, and its read stops short at it; if it polls after both segments
  // came, one edge covers both.
  bool send_around_urgent(std::string_view before, char oob, std::string_view after) {
    int on = 1, off = 0;
    bool ok = ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on) == 0 && send(before) &&
              ::send(fd_, &oob, 1, MSG_OOB | MSG_NOSIGNAL) == 1 && send(after);
    return ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &off, sizeof off) == 0 && ok;
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
  // until: the bytes up to and including the first `marker` (read as needed), or nullopt on
  // EOF/timeout; for responses the Content-Length parser above cannot frame (chunked).
  std::optional<std::string> until(std::string_view marker) {
    for (;;) {
      auto at = buf_.find(marker);
      if (at != std::string::npos) {
        std::string r = buf_.substr(0, at + marker.size());
        buf_.erase(0, at + marker.size());
        return r;
      }
      char tmp[65536];
      ssize_t k = ::recv(fd_, tmp, sizeof tmp, 0);
      if (k <= 0) return std::nullopt;
      buf_.append(tmp, std::size_t(k));
    }
  }
  // to_eof: every byte until the server closes (a close-delimited body), or nullopt on timeout.
  std::optional<std::string> to_eof() {
    for (;;) {
      char tmp[65536];
      ssize_t k = ::recv(fd_, tmp, sizeof tmp, 0);
      if (k == 0) return std::exchange(buf_, {});
      if (k < 0) return std::nullopt;
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

inline std::string get(std::string_view path) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n\r\n";
}

}  // namespace mpg::http::testing
