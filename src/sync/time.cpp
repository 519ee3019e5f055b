// time.cpp: Timer, Ticker, after, after_func on runtime timers.
#include "mpg/time.hpp"

#include "mpg/errors.hpp"
#include "mpg/runtime.hpp"
#include "runtime/sched.hpp"

namespace mpg::detail {

// TimerBox: a heap-allocated, refcounted timer node with what it does when it fires.
struct TimerBox : TimerNode {
  ChanCore* c = nullptr;        // Timer/Ticker: the channel (a reference held)
  std::function<void()> func;   // after_func
};

static void box_free(TimerNode* n) {
  auto* b = static_cast<TimerBox*>(n);
  if (b->c) chan_release(b->c);
  delete b;
}

static void box_fire(TimerNode* n, std::uint64_t) {
  auto* b = static_cast<TimerBox*>(n);
  if (b->c) {
    Clock::time_point now = Clock::now();
    chan_try_send(b->c, &now);  // a full channel drops the tick (Go's sendTime)
  } else if (b->func) {
    std::function<void()> f = b->func;
    mpg::go([f = std::move(f)] { f(); });
  }
}

static TimerBox* box_new() {
  auto* b = new TimerBox();
  b->counted = true;
  b->fire = &box_fire;
  b->free = &box_free;
  return b;
}

TimerBox* timer_box_chan(ChanCore* c, std::int64_t period_ns) {
  TimerBox* b = box_new();
  chan_retain(c);
  b->c = c;
  b->period.store(period_ns, std::memory_order_relaxed);
  return b;
}

TimerBox* timer_box_func(std::function<void()> f) {
  TimerBox* b = box_new();
  b->func = std::move(f);
  return b;
}

bool timer_box_reset(TimerBox* b, std::int64_t d_ns, std::int64_t period_ns) {
  b->period.store(period_ns, std::memory_order_relaxed);
  return timer_arm(b, nanotime() + (d_ns > 0 ? d_ns : 0));
}

bool timer_box_stop(TimerBox* b) { return timer_stop(b); }

void timer_box_release(TimerBox* b) {
  timer_stop(b);
  b->unref();
}

}  // namespace mpg::detail

namespace mpg {

static void require_runtime() {
  if (!detail::sched) throw RuntimeMisuse("mpg timers need a running mpg::run");
}

Timer::Timer(std::chrono::nanoseconds d) : C(1), box_(nullptr) {
  require_runtime();
  box_ = detail::timer_box_chan(C.core(), 0);
  detail::timer_box_reset(box_, d.count(), 0);
}

Timer::Timer(std::chrono::nanoseconds d, std::function<void()> f) : C(nullptr), box_(nullptr) {
  require_runtime();
  box_ = detail::timer_box_func(std::move(f));
  detail::timer_box_reset(box_, d.count(), 0);
}

Timer::~Timer() {
  if (box_) detail::timer_box_release(box_);
}

bool Timer::stop() { return detail::timer_box_stop(box_); }
bool Timer::reset(std::chrono::nanoseconds d) { return detail::timer_box_reset(box_, d.count(), 0); }

Ticker::Ticker(std::chrono::nanoseconds period) : C(1), box_(nullptr) {
  require_runtime();
  if (period.count() <= 0) throw std::invalid_argument("mpg::Ticker: non-positive period");
  box_ = detail::timer_box_chan(C.core(), period.count());
  detail::timer_box_reset(box_, period.count(), period.count());
}

Ticker::~Ticker() {
  if (box_) detail::timer_box_release(box_);
}

void Ticker::stop() { detail::timer_box_stop(box_); }
void Ticker::reset(std::chrono::nanoseconds period) {
  if (period.count() <= 0) throw std::invalid_argument("mpg::Ticker: non-positive period");
  detail::timer_box_reset(box_, period.count(), period.count());
}

Chan<Clock::time_point> after(std::chrono::nanoseconds d) {
  require_runtime();
  Chan<Clock::time_point> c(1);
  detail::TimerBox* b = detail::timer_box_chan(c.core(), 0);
  detail::timer_box_reset(b, d.count(), 0);
  b->unref();  // the heap entry keeps it alive until it fires
  return c;
}

Timer after_func_timer(std::chrono::nanoseconds d, std::function<void()> f) { return Timer(d, std::move(f)); }

}  // namespace mpg
