// server.hpp: one HTTP/1.1 core (ServerSession), three servers, three concurrency models.
//
//  - GoroutineServer: a goroutine per connection reading and writing an mpg::net::Conn in
//    blocking style (net/http's design). Runs inside mpg::run.
//  - ReactorServer: mpg::reactor's TcpServer: event loops call back with input Buffers; the
//    session runs on the loop thread (muduo's design). Needs no goroutine runtime.
//  - HybridServer: the netpoller watches the sockets as an event loop (edge-triggered, a
//    callback per readable edge instead of a parked goroutine); a readable connection gets
//    a goroutine that runs its requests in blocking style and ends when the socket would block,
//    so an idle connection holds no goroutine and no stack (design.md §4). Runs inside mpg::run.
//
// All three feed the same bytes to the same ServerSession, so their responses are identical.
// Each enforces the session's limits the same way: the header deadline (408), the keep-alive
// idle timeout, and graceful shutdown (stop accepting, close idle connections at once, let
// requests in progress finish within the grace period, then close the rest).
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "mpg/http/handler.hpp"
#include "mpg/http/limits.hpp"

namespace mpg::http {

// Model: which of the three servers (for tools that pick one at run time).
enum class Model : std::uint8_t { Goroutine, Reactor, Hybrid };
const char* model_name(Model m);
bool parse_model(std::string_view s, Model* out);

struct ServerOptions {
  std::string host = "127.0.0.1";  // numeric IPv4/IPv6 address ("::" or "0.0.0.0": every interface)
  std::uint16_t port = 0;          // 0: the kernel picks (port() tells)
  int loops = 1;                   // reactor: worker event loop threads
  bool reuse_port = false;         // reactor: one SO_REUSEPORT listener per loop
  Limits limits;
  // Connection hooks (mpg::kit::ConnectionManager plugs in here). on_open runs for each accepted
  // connection; false refuses it (closed at once, nothing read). on_close runs once for each
  // connection on_open admitted. Any thread; must not block.
  std::function<bool()> on_open;
  std::function<void()> on_close;
};

struct ServerStats {
  std::uint64_t accepted = 0;  // connections accepted
  std::uint64_t open = 0;      // connections open now
  std::uint64_t header_timeouts = 0;  // 408s sent for a header that took too long
  std::uint64_t idle_closes = 0;      // keep-alive connections closed for idleness
};

class GoroutineServer {
 public:
  // The handler is copied; start() and shutdown() are called from goroutines.
  GoroutineServer(Handler handler, ServerOptions opt);
  ~GoroutineServer();
  GoroutineServer(const GoroutineServer&) = delete;
  GoroutineServer& operator=(const GoroutineServer&) = delete;
  // start: listens and starts accepting; throws std::runtime_error if it cannot listen.
  void start();
  std::uint16_t port() const;
  // shutdown: stops accepting, closes idle connections, waits up to `grace` for requests in
  // progress, then closes what is left and waits for every connection goroutine.
  void shutdown(std::chrono::milliseconds grace);
  ServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class ReactorServer {
 public:
  ReactorServer(Handler handler, ServerOptions opt);
  ~ReactorServer();
  ReactorServer(const ReactorServer&) = delete;
  ReactorServer& operator=(const ReactorServer&) = delete;
  void start();  // any thread; the loops run on their own threads
  std::uint16_t port() const;
  void shutdown(std::chrono::milliseconds grace);
  ServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class HybridServer {
 public:
  HybridServer(Handler handler, ServerOptions opt);
  ~HybridServer();
  HybridServer(const HybridServer&) = delete;
  HybridServer& operator=(const HybridServer&) = delete;
  void start();  // from a goroutine: starts the acceptor and the sweeper goroutines
  std::uint16_t port() const;
  void shutdown(std::chrono::milliseconds grace);  // from a goroutine
  ServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpg::http
