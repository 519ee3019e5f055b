// handler.hpp: one file descriptor's registration with an EventLoop and its callbacks.
#pragma once
#include <cstdint>
#include <functional>

namespace mpg::reactor {

class EventLoop;

// Handler: routes readiness of one fd to its callbacks (muduo's Channel); owned by whoever owns
// the fd (a Connection, the Acceptor, a test), does not own the fd, loop thread only. It must be
// removed (remove(), or the destructor does it) before its fd is closed.
class Handler {
 public:
  using Callback = std::function<void()>;

  Handler(EventLoop& loop, int fd);
  ~Handler();  // removes the registration if still present (loop thread)
  Handler(const Handler&) = delete;
  Handler& operator=(const Handler&) = delete;

  void on_readable(Callback cb) { read_cb_ = std::move(cb); }
  void on_writable(Callback cb) { write_cb_ = std::move(cb); }
  // on_close: the peer hung up and nothing is left to read (EPOLLHUP without EPOLLIN).
  void on_close(Callback cb) { close_cb_ = std::move(cb); }
  void on_error(Callback cb) { error_cb_ = std::move(cb); }

  // set_edge_triggered: edge- instead of level-triggered; set before the first enable. An
  // edge-triggered reader must read until EAGAIN or call repost_readable() to come back.
  void set_edge_triggered(bool on);
  void enable_reading() { set_interest(interest_ | kRead); }
  void disable_reading() { set_interest(interest_ & ~kRead); }
  void enable_writing() { set_interest(interest_ | kWrite); }
  void disable_writing() { set_interest(interest_ & ~kWrite); }
  // remove: unregisters; events already returned for this fd are dropped (generation tag).
  void remove();
  // repost_readable: dispatch the read callback again in the next iteration, after the other
  // ready fds had their turn (an edge-triggered reader that stopped at its read budget).
  void repost_readable();

  bool reading() const { return interest_ & kRead; }
  bool writing() const { return interest_ & kWrite; }
  bool registered() const { return registered_; }
  bool edge_triggered() const { return edge_; }
  int fd() const { return fd_; }
  // ready: the poll bits (poll::kReadable, kWritable, kHangup, kError) of the event being
  // dispatched now, for a callback that wants more than its own name says (loop thread).
  std::uint32_t ready() const { return ready_; }
  EventLoop& loop() const { return loop_; }

  // handle: dispatches poll ready bits (poll::kReadable, ...) to the callbacks; EventLoop only.
  // A callback that removes this handler stops the rest of the dispatch.
  void handle(std::uint32_t ready);

 private:
  friend class EventLoop;
  static constexpr std::uint32_t kRead = 1, kWrite = 2;  // equal to poll::kWantRead/kWantWrite
  void set_interest(std::uint32_t interest);

  EventLoop& loop_;
  const int fd_;
  std::uint32_t ready_ = 0;
  std::uint32_t interest_ = 0;
  bool edge_ = false;
  bool registered_ = false;
  Callback read_cb_, write_cb_, close_cb_, error_cb_;
};

}  // namespace mpg::reactor
