// connection.hpp: one accepted TCP connection of a TcpServer, and the handle other threads use.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <any>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mpg/poll/unique_fd.hpp"
#include "mpg/reactor/buffer.hpp"
#include "mpg/reactor/event_loop.hpp"
#include "mpg/reactor/handler.hpp"

namespace mpg::reactor {

namespace detail {
class Worker;
}

// ConnHandle: names a connection from any thread (a worker and an id, no pointer to the
// Connection), so a send from another thread after the close is dropped instead of touching
// freed memory. A plain value; valid while its TcpServer lives.
class ConnHandle {
 public:
  ConnHandle() = default;
  ConnHandle(detail::Worker* w, std::uint64_t id) : worker_(w), id_(id) {}
  // send: copies `data` to the connection's loop, which sends it in order with the loop's own
  // sends; dropped if the connection is closed by then. Any thread.
  void send(std::string data) const;
  // shutdown: as Connection::shutdown, from any thread.
  void shutdown() const;
  std::uint64_t id() const { return id_; }
  bool valid() const { return worker_ != nullptr; }

 private:
  detail::Worker* worker_ = nullptr;
  std::uint64_t id_ = 0;
};

// Connection: a connected socket with its input Buffer and output queue; owned by its worker's
// table (unique_ptr) until closed, then by the loop's graveyard until the end of the batch; loop
// thread only. Other threads use handle().
class Connection {
 public:
  // State: who holds the Connection and what it still does.
  enum class State : std::uint8_t {  // one byte: user_data_ fits beside it (no size growth)
    kOpen,        // in the worker's table; reads (unless paused) and writes
    kDraining,    // in the table; no more reads; closes once the output queue is written
                  // (after shutdown(), or the peer's FIN with output still queued)
    kHalfClosed,  // in the table; FIN sent; discards input until the peer's FIN
    kClosed,      // out of the table, in the loop's graveyard; fd unregistered
  };

  // kMaxIov: iovecs per writev (Linux's IOV_MAX is 1024; 64 covers the queue of a busy
  // connection without a large stack array).
  static constexpr int kMaxIov = 64;
  // kCoalesceBytes: a send smaller than this is appended to the last queued chunk instead of
  // starting a new one, so many small replies make few iovecs.
  static constexpr std::size_t kCoalesceBytes = 16 * 1024;

  Connection(detail::Worker& worker, std::uint64_t id, poll::UniqueFd fd,
             const sockaddr_storage& peer);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // send: writes at once what the socket takes and queues the rest. Loop thread; from other
  // threads use handle().send(). Dropped once the connection is draining or closed.
  void send(std::string_view data);
  // shutdown: stop reading, flush the output queue, then close (FIN, then wait for the peer's).
  void shutdown();
  // force_close: close now; queued output is lost.
  void force_close();

  std::uint64_t id() const { return id_; }
  ConnHandle handle() const;
  EventLoop& loop() const { return handler_.loop(); }
  State state() const { return state_; }
  std::size_t queued_output() const { return out_bytes_; }
  bool reading_paused() const { return paused_; }
  // peer: the peer's address (sa_family AF_INET or AF_INET6; a Unix peer keeps its family only).
  const sockaddr& peer() const { return peer_.sa; }
  int fd() const { return fd_.get(); }
  // context: user data carried with the connection (a parser, a session).
  std::any& context() { return context_; }
  // user_data: a raw pointer beside the hot fields, libuv's `data`: an owner that keeps its state
  // in context() may cache a pointer to it here, so a read finds it without the any's heap hop
  // (a cache miss per request at 1,000 connections: docs/reactor.md). The reactor never reads it.
  void* user_data() const { return user_data_; }
  void set_user_data(void* p) { user_data_ = p; }
  EventLoop::Clock::time_point last_input() const { return last_input_; }

  // start: registers with the loop and calls on_connection (Worker, loop thread).
  void start();

 private:
  void set_state(State to);
  void handle_read();
  void handle_write();
  void handle_close();
  void flush();
  void after_output_change();
  void half_close();

  detail::Worker& worker_;
  const std::uint64_t id_;
  // Events: the fd's registration, dispatching straight to this Connection (no std::function:
  // 40 bytes where a Handler takes 160, in every connection, idle or not).
  class Events final : public HandlerBase {
   public:
    Events(Connection& c, EventLoop& loop, int fd) : HandlerBase(loop, fd), c_(c) {}

   private:
    bool on_read() override;
    bool on_write() override;
    bool on_close() override;
    bool on_error() override;
    Connection& c_;
  };
  poll::UniqueFd fd_;  // declared before handler_: the handler is removed before the fd closes
  Events handler_;
  // PeerAddr: 28 bytes, where a sockaddr_storage took 128 in every (idle) connection.
  union PeerAddr {
    sockaddr sa;
    sockaddr_in in4;
    sockaddr_in6 in6;
  } peer_;
  State state_ = State::kOpen;
  bool paused_ = false;  // reading stopped by high water
  void* user_data_ = nullptr;
  Buffer input_;
  // OutQueue: the output queue; a vector with a moving front, because libstdc++'s std::deque
  // allocates ~600 bytes as soon as it is made, which every idle connection would carry.
  class OutQueue {
   public:
    bool empty() const { return first_ == q_.size(); }
    std::string& front() { return q_[first_]; }
    std::string& back() { return q_.back(); }
    void emplace_back(std::string_view s) { q_.emplace_back(s); }
    void pop_front() {
      if (++first_ == q_.size()) {
        q_.clear();
        first_ = 0;
      }
    }
    std::vector<std::string>::iterator begin() { return q_.begin() + std::ptrdiff_t(first_); }
    std::vector<std::string>::iterator end() { return q_.end(); }

   private:
    std::vector<std::string> q_;
    std::size_t first_ = 0;
  };
  OutQueue out_;
  std::size_t out_head_ = 0;   // bytes of out_.front() already written
  std::size_t out_bytes_ = 0;  // bytes queued in out_, minus out_head_
  EventLoop::Clock::time_point last_input_;
  std::any context_;
};

}  // namespace mpg::reactor
