// server_config.hpp: TcpServer's tunables and callbacks, each limit with its unit and reason.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mpg::reactor {

class Buffer;
class Connection;

// ServerConfig: how a TcpServer listens, reads, buffers and times out; a plain value copied
// into the server at construction.
struct ServerConfig {
  std::string host = "127.0.0.1";  // numeric IPv4 or IPv6 address
  std::uint16_t port = 0;          // 0: the kernel picks one (TcpServer::port())
  int backlog = 4096;              // listen(2) backlog; the kernel caps it at somaxconn
  // loops: worker loops (threads) that own connections. 0: the acceptor loop serves them too.
  int loops = 1;
  // reuse_port: one SO_REUSEPORT listener per worker loop instead of one acceptor dealing
  // round-robin; the kernel spreads connections by hash (needs loops >= 1).
  bool reuse_port = false;
  // cpus: pin worker loop i to cpus[i % size] (empty: no pinning).
  std::vector<int> cpus;
  // edge_triggered: register connections ET instead of LT (LT is the default; see reactor.md).
  bool edge_triggered = false;

  // read_budget: bytes one connection may read per dispatch, so one fast sender cannot starve
  // the other connections of its loop; 64 KiB is a socket buffer's worth (0 is taken as 1).
  std::size_t read_budget = 64 * 1024;
  // high_water: queued output above which the server stops reading from that peer and calls
  // on_high_water; 1 MiB keeps 1,000 stalled peers under 1 GiB.
  std::size_t high_water = 1024 * 1024;
  // low_water: queued output at or below which reading resumes; well under high_water so a
  // connection does not flap between states on every write.
  std::size_t low_water = 256 * 1024;
  // hard_cap: queued output (or unconsumed input) above which the connection is closed: a
  // handler that keeps sending to a peer that does not read would otherwise grow without bound.
  std::size_t hard_cap = 16 * 1024 * 1024;

  // idle_timeout: close a connection that received nothing for this long (0: never).
  std::chrono::milliseconds idle_timeout{0};
  // wheel_tick: the idle wheel's resolution; a connection closes between idle_timeout and
  // idle_timeout + wheel_tick after its last input.
  std::chrono::milliseconds wheel_tick{1000};
  // accept_pause: after EMFILE/ENFILE, stop accepting this long, so the loop does not spin on a
  // listener that stays readable while no descriptor is free.
  std::chrono::milliseconds accept_pause{100};
  // log_interval: at most one line per interval for a repeated condition (accept errors).
  std::chrono::milliseconds log_interval{1000};
  // log: where the server's rare log lines go (default: stderr). Called on loop threads.
  std::function<void(std::string_view)> log;
};

// ServerCallbacks: the user's hooks, all called on the connection's loop thread.
struct ServerCallbacks {
  std::function<void(Connection&)> on_connection;           // accepted and registered
  std::function<void(Connection&, Buffer&)> on_message;     // new input; consume what you parse
  std::function<void(Connection&)> on_write_complete;       // a queued output fully written
  std::function<void(Connection&, std::size_t)> on_high_water;  // output crossed high_water
  std::function<void(Connection&)> on_close;                // closing; last call for it
};

}  // namespace mpg::reactor
