// event_loop.hpp: the Reactor's event loop, at most one per thread.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace mpg::poll {
class Poller;
struct Event;
}  // namespace mpg::poll

namespace mpg::reactor {

class HandlerBase;
namespace detail {
class TimerQueue;
}

// TimerId: names one timer for cancel(); 0 is never a live timer.
struct TimerId {
  std::uint64_t value = 0;
};

// EventLoop: waits for readiness, dispatches it to Handlers, runs due timers and queued tasks;
// created on and owned by the thread that runs it (at most one per thread, asserted). Other
// threads may only call stop(), run_in_loop(), queue_in_loop(), run_after(), run_every() and
// cancel(); every other method asserts it runs on the loop's thread.
class EventLoop {
 public:
  using Task = std::function<void()>;
  using Clock = std::chrono::steady_clock;

  // kScratchBytes: the per-loop landing area for reads. 64 KiB drains a socket's default receive
  // buffer in one call without giving every connection's input buffer that much memory.
  static constexpr std::size_t kScratchBytes = 64 * 1024;
  // kFinalDrainRounds: how many times run() re-runs the task queue after stop(), so tasks that
  // queue more tasks finish, yet a task that always re-queues itself cannot keep run() alive.
  static constexpr int kFinalDrainRounds = 16;

  EventLoop();  // binds the loop to the calling thread; aborts if that thread already has one
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // run: the loop; returns after stop(), once the task queue has been drained a last time:
  // every task queued before stop() runs, and so do tasks those tasks queue. A task another
  // thread queues after stop() runs only if it arrives before that last drain; one that misses
  // it is destroyed with the loop. Loop thread only.
  void run();
  // stop: makes run() return after its current iteration. Any thread (not a signal handler: it
  // takes the task lock).
  void stop();

  // run_in_loop: runs `task` now if called on the loop thread, else queues it.
  void run_in_loop(Task task);
  // queue_in_loop: runs `task` on the loop thread after the current batch of events. Any thread,
  // as long as the loop object lives until the call returns; tasks from one thread run in the
  // order they were queued.
  void queue_in_loop(Task task);
  // pending_tasks: tasks queued and not yet taken by the loop (any thread, a snapshot).
  std::size_t pending_tasks() const;
  // set_before_wait: `cb` runs on the loop thread at the end of every iteration (after the
  // events, timers and tasks; before the next wait), and once more after the last drain in run()
  // (libuv's prepare handle). For work that is cheaper done once per batch than once per event:
  // the hybrid server makes the goroutines of a whole batch runnable at once. Loop thread only.
  void set_before_wait(Task cb) { before_wait_ = std::move(cb); }

  // run_after / run_every: a timer on this loop (any thread; the callback runs on the loop).
  TimerId run_after(std::chrono::nanoseconds delay, Task cb);
  TimerId run_every(std::chrono::nanoseconds interval, Task cb);
  // cancel: the timer will not fire after this returns when called on the loop thread; from
  // another thread, it will not fire after the loop picks up the cancel.
  void cancel(TimerId id);

  bool in_loop_thread() const { return std::this_thread::get_id() == thread_; }
  // assert_in_loop_thread: aborts with a message naming `what` when called off the loop thread.
  void assert_in_loop_thread(const char* what = "EventLoop") const {
    if (!in_loop_thread()) abort_not_in_loop_thread(what);
  }
  // current: the loop bound to the calling thread, or nullptr.
  static EventLoop* current();

  // now: the time this iteration's wait returned (cheap; loop thread).
  Clock::time_point now() const { return now_; }
  // scratch: the per-loop read landing area (loop thread; valid until the next read).
  std::span<char> scratch() { return {scratch_.get(), kScratchBytes}; }
  // destroy_later: keeps `p` alive until the current batch of events, timers or tasks has been
  // dispatched, so a handler closed while later events of the batch still name it is destroyed
  // only when nothing can reach it (loop thread).
  template <class T>
  void destroy_later(std::unique_ptr<T> p) {
    assert_in_loop_thread("EventLoop::destroy_later");
    graveyard_.emplace_back(p.release(), [](void* q) { delete static_cast<T*>(q); });
  }
  // iterations: completed loop iterations (a test's progress gauge; loop thread).
  std::uint64_t iterations() const { return iterations_; }

 private:
  friend class HandlerBase;
  void update(HandlerBase& h);   // registers or changes h's interest in the poller
  void remove(HandlerBase& h);   // unregisters h; later events for it are dropped
  void repost(HandlerBase& h, std::uint32_t ready);  // dispatch h again next iteration
  static constexpr int kWarmLines = 4;   // a Connection's hot fields (see warm)
  static constexpr int kSlotsAhead = 4;  // how far ahead run() prefetches registration slots
  void warm(const poll::Event& e) const;
  void dispatch(const poll::Event& e);
  void run_tasks();
  int wait_timeout_ms();
  [[noreturn]] void abort_not_in_loop_thread(const char* what) const;

  const std::thread::id thread_;
  std::unique_ptr<poll::Poller> poller_;
  std::unique_ptr<detail::TimerQueue> timers_;
  std::unique_ptr<char[]> scratch_;
  std::vector<poll::Event> events_;
  std::vector<poll::Event> reposts_;  // loop thread only
  std::vector<std::unique_ptr<void, void (*)(void*)>> graveyard_;  // loop thread only
  Clock::time_point now_;
  std::uint64_t iterations_ = 0;
  Task before_wait_;  // loop thread only
  std::atomic<bool> stop_{false};

  mutable std::mutex mu_;
  std::vector<Task> tasks_;  // guarded by mu_; swapped out whole by the loop
  std::atomic<std::uint64_t> next_timer_id_{1};
};

}  // namespace mpg::reactor
