// handler.hpp: one file descriptor's registration with an EventLoop and its callbacks.
#pragma once
#include <cstdint>
#include <functional>

namespace mpg::reactor {

class EventLoop;

// HandlerBase: one fd's registration with an EventLoop and the order in which its events are
// dispatched (muduo's Channel); what each event does is the subclass's: Handler takes four
// std::function callbacks, and a reactor Connection its own methods, in 40 bytes where Handler
// takes 160 (every idle connection carries one). Owned by whoever owns the fd, does not own the
// fd, loop thread only. It must be removed (remove(), or the destructor does it) before its fd
// is closed.
class HandlerBase {
 public:
  HandlerBase(EventLoop& loop, int fd);
  virtual ~HandlerBase();  // removes the registration if still present (loop thread)
  HandlerBase(const HandlerBase&) = delete;
  HandlerBase& operator=(const HandlerBase&) = delete;

  // set_edge_triggered: edge- instead of level-triggered; set before the first enable. An
  // edge-triggered reader must read until EAGAIN or call repost_readable() to come back.
  void set_edge_triggered(bool on);
  void enable_reading() { set_interest(interest_ | kRead); }
  void disable_reading() { set_interest(interest_ & ~kRead); }
  void enable_writing() { set_interest(interest_ | kWrite); }
  void disable_writing() { set_interest(interest_ & ~kWrite); }
  // remove: unregisters; events already returned for this fd are dropped (generation tag).
  void remove();
  // repost_readable: dispatch the read event again in the next iteration, after the other
  // ready fds had their turn (an edge-triggered reader that stopped at its read budget).
  void repost_readable();

  bool reading() const { return interest_ & kRead; }
  bool writing() const { return interest_ & kWrite; }
  bool registered() const { return registered_; }
  bool edge_triggered() const { return edge_; }
  int fd() const { return fd_; }
  // ready: the poll bits (poll::kReadable, kWritable, kHangup, kError) of the event being
  // dispatched now, for a handler that wants more than the event's name says (loop thread).
  std::uint32_t ready() const { return ready_; }
  EventLoop& loop() const { return loop_; }

  // handle: dispatches poll ready bits (poll::kReadable, ...) to the on_* events; EventLoop
  // only. An event that removes this handler stops the rest of the dispatch.
  void handle(std::uint32_t ready);

 protected:
  // on_read / on_write / on_close / on_error: one event each; return whether anything ran.
  virtual bool on_read() = 0;
  virtual bool on_write() = 0;
  virtual bool on_close() = 0;
  virtual bool on_error() = 0;

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
};

// Handler: a HandlerBase whose events call std::function callbacks (unset ones do nothing).
class Handler final : public HandlerBase {
 public:
  using Callback = std::function<void()>;

  Handler(EventLoop& loop, int fd) : HandlerBase(loop, fd) {}

  void on_readable(Callback cb) { read_cb_ = std::move(cb); }
  void on_writable(Callback cb) { write_cb_ = std::move(cb); }
  // on_close: the peer hung up and nothing is left to read (EPOLLHUP without EPOLLIN).
  void on_close(Callback cb) { close_cb_ = std::move(cb); }
  void on_error(Callback cb) { error_cb_ = std::move(cb); }

 private:
  static bool call(const Callback& cb) {
    if (!cb) return false;
    cb();
    return true;
  }
  bool on_read() override { return call(read_cb_); }
  bool on_write() override { return call(write_cb_); }
  bool on_close() override { return call(close_cb_); }
  bool on_error() override { return call(error_cb_); }

  Callback read_cb_, write_cb_, close_cb_, error_cb_;
};

}  // namespace mpg::reactor
