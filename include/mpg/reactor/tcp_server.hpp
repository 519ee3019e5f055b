// tcp_server.hpp: a TCP server on a set of event loops.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "mpg/reactor/server_config.hpp"

namespace mpg::reactor {

// ServerStats: a snapshot of a server's counters (any thread).
struct ServerStats {
  std::uint64_t accepted = 0;
  std::uint64_t closed = 0;
  std::uint64_t open = 0;
  std::uint64_t accept_fd_exhausted = 0;  // accept failures with EMFILE/ENFILE
  std::uint64_t accept_calls = 0;         // accept4 calls, successful or not
  std::uint64_t log_lines = 0;            // lines written to ServerConfig::log
  std::uint64_t high_water_pauses = 0;    // times a connection stopped reading at high water
  std::uint64_t hard_cap_closes = 0;
  std::uint64_t idle_closes = 0;
};

// TcpServer: listens, deals connections to worker loops and runs the user's callbacks; owned by
// the user, who calls start() and shutdown() from one non-loop thread. It owns its loop threads:
// one acceptor loop plus ServerConfig::loops workers.
class TcpServer {
 public:
  TcpServer(ServerConfig config, ServerCallbacks callbacks);
  ~TcpServer();  // shutdown(0) if still running
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;

  // start: binds and listens (throws std::system_error on failure), starts the loops.
  void start();
  // port: the bound port (after start()).
  std::uint16_t port() const;
  // shutdown: graceful stop, blocking; see the numbered steps in tcp_server.cpp. Connections
  // still writing after `deadline` are closed. Not from a loop thread of this server.
  void shutdown(std::chrono::milliseconds deadline);
  ServerStats stats() const;
  // for_each_connection: fn(c) for every connection open now, each on its own loop's thread.
  // Queued: returns before they run; a later shutdown()'s steps run after them, loop by loop.
  // fn may shut down or close c. (The HTTP server closes its idle keep-alive connections this
  // way before a graceful shutdown, with no table of its own.)
  void for_each_connection(std::function<void(Connection&)> fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpg::reactor
