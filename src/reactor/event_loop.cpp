// event_loop.cpp: the Reactor's loop.
//
// The problem: one thread serves many descriptors, timers and tasks posted by other threads,
// and must never block on any one of them nor let one starve the rest.
//
// Rejected: edge-triggered by default (Netty's old default, dropped in 2024): an ET reader must
// drain its socket before it yields, so one fast sender holds the loop, or the reader must track
// "still readable" itself. Level-triggered lets a connection read a budget and return; epoll
// reports it again next iteration after everyone else ready in the same batch had a turn.
// Rejected too: a lock-free MPSC task queue: producers are rare (cross-thread send, accept
// hand-off) and a mutex held for one push_back is cheaper than getting a lock-free queue right.
//
// One iteration, in order:
//   1. wait: epoll_wait with a timeout of 0 if re-posted events or tasks are pending, else until
//      the earliest timer (rounded up to the next millisecond, so a timer never fires early
//      and the loop does not spin on a sub-millisecond remainder), else forever.
//   2. dispatch: every event of the batch, then the synthetic ones re-posted by the previous
//      iteration; each is resolved through the poller's generation check at this moment, so an
//      event for a handler removed earlier in the batch (and maybe replaced on the same fd
//      number) is dropped.
//   3. the graveyard: objects whose destruction was deferred during step 2 are destroyed, now
//      that no later event of the batch can name them.
//   4. timers due at the time of step 1's return, then the graveyard again.
//   5. tasks: the queue is swapped out under the lock and run outside it, so a task may queue
//      more tasks (they run next iteration) and producers never wait on a running task; then
//      the graveyard again.
//   6. the before-wait callback, if one is set (work batched over the whole iteration).
// The wake-up (poller eventfd) is written only by the first queue_in_loop after the loop
// consumed the previous one; the loop always looks at the queue after wait() returns (step 5),
// so no wake-up is lost (see Poller::wait).
#include "mpg/reactor/event_loop.hpp"

#include <cstdio>
#include <cstdlib>

#include "mpg/reactor/handler.hpp"
#include "poll/poller.hpp"
#include "reactor/timer_queue.hpp"

namespace mpg::reactor {
namespace {

thread_local EventLoop* t_loop = nullptr;

std::int64_t to_ns(EventLoop::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

EventLoop::EventLoop()
    : thread_(std::this_thread::get_id()),
      poller_(std::make_unique<poll::Poller>()),
      timers_(std::make_unique<detail::TimerQueue>()),
      scratch_(new char[kScratchBytes]),
      events_(poll::Poller::kMaxBatch),
      now_(Clock::now()) {
  if (t_loop != nullptr) {
    std::fprintf(stderr, "mpg reactor: a second EventLoop on a thread that already has one\n");
    std::abort();
  }
  t_loop = this;
}

EventLoop::~EventLoop() {
  assert_in_loop_thread("EventLoop::~EventLoop");
  graveyard_.clear();
  t_loop = nullptr;
}

EventLoop* EventLoop::current() { return t_loop; }

void EventLoop::abort_not_in_loop_thread(const char* what) const {
  std::fprintf(stderr, "mpg reactor: %s called off its loop thread\n", what);
  std::abort();
}

void EventLoop::run() {
  assert_in_loop_thread("EventLoop::run");
  while (!stop_.load(std::memory_order_acquire)) {
    int n = poller_->wait(events_, wait_timeout_ms());
    now_ = Clock::now();
    // Two stages ahead of dispatch: the registration slot kSlotsAhead events on, then (warm) the
    // handler of the next event, whose slot is loaded by then.
    for (int i = 0; i < n && i < kSlotsAhead; i++) poller_->prefetch(events_[static_cast<std::size_t>(i)]);
    for (int i = 0; i < n; i++) {
      if (i + kSlotsAhead < n) poller_->prefetch(events_[static_cast<std::size_t>(i + kSlotsAhead)]);
      if (i + 1 < n) warm(events_[static_cast<std::size_t>(i) + 1]);
      dispatch(events_[static_cast<std::size_t>(i)]);
    }
    if (!reposts_.empty()) {
      std::vector<poll::Event> again;
      again.swap(reposts_);
      for (const poll::Event& e : again) dispatch(e);
    }
    graveyard_.clear();
    timers_->run_due(to_ns(now_));
    graveyard_.clear();
    run_tasks();
    graveyard_.clear();
    if (before_wait_) before_wait_();
    iterations_++;
  }
  // The last drain: tasks queued before stop() (a final send, a deferred close) still run.
  // pending_tasks() takes the lock at least once, which waits out a stop() or queue_in_loop()
  // still inside its wake-up (see stop()).
  for (int round = 0; round < kFinalDrainRounds && pending_tasks() > 0; round++) {
    run_tasks();
    graveyard_.clear();
  }
  if (before_wait_) before_wait_();
  stop_.store(false, std::memory_order_relaxed);  // run() may be called again
}

void EventLoop::stop() {
  // Under the task lock, like queue_in_loop: the loop's last act in run() takes this lock, so
  // once it sees stop_ it cannot return (and be destroyed) while this wake() still runs.
  std::lock_guard<std::mutex> g(mu_);
  stop_.store(true, std::memory_order_release);
  poller_->wake();
}

int EventLoop::wait_timeout_ms() {
  if (!reposts_.empty() || pending_tasks() > 0) return 0;
  std::int64_t next = timers_->next_deadline();
  if (next < 0) return -1;
  std::int64_t left = next - to_ns(Clock::now());
  if (left <= 0) return 0;
  std::int64_t ms = (left + 999'999) / 1'000'000;
  return ms > 1'000'000 ? 1'000'000 : static_cast<int>(ms);
}

// warm: prefetches the first kWarmLines lines of the handler the event after this one goes to,
// while this one is handled. At 1,000 connections a connection's object is out of cache each
// time its event comes, and handle() then stalls on it line by line (perf: docs/reactor.md).
// Only a hint: the handler may be gone by its turn (dispatch resolves again).
void EventLoop::warm(const poll::Event& e) const {
  if (const auto* h = static_cast<const char*>(poller_->resolve(e)))
    for (int l = 0; l < kWarmLines; l++) __builtin_prefetch(h + l * 64, 1);
}

void EventLoop::dispatch(const poll::Event& e) {
  if (auto* h = static_cast<HandlerBase*>(poller_->resolve(e))) h->handle(e.ready);
}

void EventLoop::run_in_loop(Task task) {
  if (in_loop_thread()) {
    task();
  } else {
    queue_in_loop(std::move(task));
  }
}

void EventLoop::queue_in_loop(Task task) {
  // The wake-up is made under the lock: the loop takes this lock before run() returns, so a
  // producer racing with the loop's end never touches a destroyed poller. From the loop thread
  // itself the wake-up is cheap (skipped while one is pending) and harmless.
  std::lock_guard<std::mutex> g(mu_);
  tasks_.push_back(std::move(task));
  poller_->wake();
}

std::size_t EventLoop::pending_tasks() const {
  std::lock_guard<std::mutex> g(mu_);
  return tasks_.size();
}

void EventLoop::run_tasks() {
  std::vector<Task> batch;
  {
    std::lock_guard<std::mutex> g(mu_);
    batch.swap(tasks_);
  }
  for (Task& t : batch) t();
}

TimerId EventLoop::run_after(std::chrono::nanoseconds delay, Task cb) {
  TimerId id{next_timer_id_.fetch_add(1, std::memory_order_relaxed)};
  std::int64_t when = to_ns(Clock::now()) + delay.count();
  run_in_loop([this, id, when, cb = std::move(cb)]() mutable {
    timers_->add(id.value, when, 0, std::move(cb));
  });
  return id;
}

TimerId EventLoop::run_every(std::chrono::nanoseconds interval, Task cb) {
  TimerId id{next_timer_id_.fetch_add(1, std::memory_order_relaxed)};
  std::int64_t when = to_ns(Clock::now()) + interval.count();
  run_in_loop([this, id, when, iv = interval.count(), cb = std::move(cb)]() mutable {
    timers_->add(id.value, when, iv, std::move(cb));
  });
  return id;
}

void EventLoop::cancel(TimerId id) {
  run_in_loop([this, id] { timers_->cancel(id.value); });
}

void EventLoop::update(HandlerBase& h) {
  assert_in_loop_thread("Handler (enable/disable)");
  std::uint32_t interest = h.interest_ | (h.edge_ ? poll::kEdge : 0);
  int err = h.registered_ ? poller_->modify(h.fd_, interest) : poller_->add(h.fd_, interest, &h);
  if (err != 0) {
    std::fprintf(stderr, "mpg reactor: epoll_ctl on fd %d failed: errno %d\n", h.fd_, err);
    std::abort();
  }
  h.registered_ = true;
}

void EventLoop::remove(HandlerBase& h) {
  assert_in_loop_thread("Handler::remove");
  poller_->remove(h.fd_);
  h.registered_ = false;
  h.interest_ = 0;
}

void EventLoop::repost(HandlerBase& h, std::uint32_t ready) {
  assert_in_loop_thread("Handler::repost_readable");
  reposts_.push_back(poller_->synthetic(h.fd_, ready));
}

}  // namespace mpg::reactor
