// loop_thread.hpp: a thread that owns one EventLoop.
#pragma once
#include <functional>
#include <thread>

#include "mpg/reactor/event_loop.hpp"

namespace mpg::reactor::detail {

// LoopThread: starts a thread, builds an EventLoop on it, runs it until stop(); owned by the
// TcpServer; start() and stop() from the owner's thread, loop() from any thread after start().
class LoopThread {
 public:
  using Hook = std::function<void(EventLoop&)>;

  // start: runs on_start on the new loop before run(), and on_exit after run() returns (still on
  // the loop thread, so loop-owned objects are destroyed there); pins to `cpu` if >= 0. Returns
  // once on_start has run.
  void start(Hook on_start, Hook on_exit, int cpu);
  // stop: stops the loop (which drains its task queue once more) and joins the thread.
  void stop();
  EventLoop& loop() const { return *loop_; }
  bool running() const { return thread_.joinable(); }

 private:
  std::thread thread_;
  EventLoop* loop_ = nullptr;
};

}  // namespace mpg::reactor::detail
