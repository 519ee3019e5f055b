// worker.hpp: the per-loop state of a TcpServer: its connections, idle wheel and counters.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "mpg/poll/unique_fd.hpp"
#include "mpg/reactor/connection.hpp"
#include "mpg/reactor/server_config.hpp"
#include "reactor/timing_wheel.hpp"

namespace mpg::reactor::detail {

// Counters: a server's statistics; shared by its loops (relaxed atomics: they are reports, not
// synchronization).
struct Counters {
  std::atomic<std::uint64_t> accepted{0}, closed{0}, accept_fd_exhausted{0}, accept_calls{0},
      log_lines{0}, high_water_pauses{0}, hard_cap_closes{0}, idle_closes{0};
  void bump(std::atomic<std::uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }
};

// RateLog: writes a repeated condition at most once per interval and counts the rest; owned by
// one acceptor, loop thread only.
class RateLog {
 public:
  RateLog(const ServerConfig& cfg, Counters& counters) : cfg_(cfg), counters_(counters) {}
  void log(EventLoop::Clock::time_point now, const std::string& line);

 private:
  const ServerConfig& cfg_;
  Counters& counters_;
  EventLoop::Clock::time_point next_{};
  std::uint64_t suppressed_ = 0;
};

// Worker: one loop's connections; owned by the TcpServer, its table touched only on its loop's
// thread; open() may be read from any thread.
class Worker {
 public:
  Worker(const ServerConfig& cfg, const ServerCallbacks& cb, Counters& counters)
      : cfg_(cfg), cb_(cb), counters_(counters) {}

  // attach: binds to its loop and starts the idle wheel (loop thread, before any adopt()).
  void attach(EventLoop& loop);
  // adopt: takes an accepted socket and starts a Connection on it (loop thread).
  void adopt(poll::UniqueFd fd, const sockaddr_storage& peer, std::uint64_t id);
  // release: takes a closed connection out of the table; the loop destroys it after the batch.
  void release(Connection& c);
  Connection* find(std::uint64_t id);
  // drain_all / close_all: shutdown steps 2 and 4 (loop thread).
  void drain_all();
  void close_all();
  // for_each: fn(c) for every connection in the table now (loop thread); fn may close c.
  void for_each(const std::function<void(Connection&)>& fn);
  // detach: the loop is ending; closes what is left (loop thread).
  void detach();
  std::size_t open() const { return open_.load(std::memory_order_acquire); }
  // take_storage / give_storage: the loop's spare input-buffer storage (loop thread). A
  // connection's input buffer holds memory only while it holds input, so 10,000 idle
  // connections do not hold 10,000 buffers (nginx frees an idle connection's buffer likewise).
  std::vector<char> take_storage() {
    if (spare_.empty()) return {};
    std::vector<char> v = std::move(spare_.back());
    spare_.pop_back();
    return v;
  }
  void give_storage(std::vector<char>&& v) {
    if (spare_.size() < kSpareMax && v.capacity() <= kSpareBytesMax) spare_.push_back(std::move(v));
  }

  EventLoop& loop() const { return *loop_; }
  const ServerConfig& config() const { return cfg_; }
  const ServerCallbacks& callbacks() const { return cb_; }
  Counters& counters() const { return counters_; }

 private:
  void on_tick();

  const ServerConfig& cfg_;
  const ServerCallbacks& cb_;
  Counters& counters_;
  EventLoop* loop_ = nullptr;
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> conns_;  // loop thread only
  std::unique_ptr<TimingWheel> wheel_;                                     // loop thread only
  std::atomic<std::size_t> open_{0};  // written on the loop, read by shutdown()
  // kSpareMax / kSpareBytesMax: spare buffers kept per loop, and the largest kept (a buffer
  // grown by a big request goes back to the allocator).
  static constexpr std::size_t kSpareMax = 64, kSpareBytesMax = 64 * 1024;
  std::vector<std::vector<char>> spare_;  // loop thread only
};

}  // namespace mpg::reactor::detail
