// time.hpp: mpg::Timer, mpg::Ticker, mpg::after and mpg::after_func, as Go's time package.
// Each fires on the per-P timer heaps; a Timer's or Ticker's channel has capacity 1 and a tick
// that finds it full is dropped, as in Go.
#pragma once
#include <chrono>
#include <functional>

#include "mpg/chan.hpp"

namespace mpg {

using Clock = std::chrono::steady_clock;

namespace detail {
struct TimerBox;
TimerBox* timer_box_chan(ChanCore* c, std::int64_t period_ns);
TimerBox* timer_box_func(std::function<void()> f);
bool timer_box_reset(TimerBox* b, std::int64_t d_ns, std::int64_t period_ns);
bool timer_box_stop(TimerBox* b);
void timer_box_release(TimerBox* b);
}  // namespace detail

// Timer: sends the time on C once, d after it was made (or last reset).
class Timer {
 public:
  template <class Rep, class Period>
  explicit Timer(std::chrono::duration<Rep, Period> d) : Timer(std::chrono::duration_cast<std::chrono::nanoseconds>(d)) {}
  explicit Timer(std::chrono::nanoseconds d);
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer();
  // stop: true if it stopped the timer before it fired.
  bool stop();
  // reset: re-arms for d from now; true if it had been active.
  bool reset(std::chrono::nanoseconds d);
  Chan<Clock::time_point> C;

 private:
  friend Timer after_func_timer(std::chrono::nanoseconds, std::function<void()>);
  Timer(std::chrono::nanoseconds d, std::function<void()> f);
  detail::TimerBox* box_;
};

// Ticker: sends the time on C every period; slow receivers miss ticks.
class Ticker {
 public:
  template <class Rep, class Period>
  explicit Ticker(std::chrono::duration<Rep, Period> d) : Ticker(std::chrono::duration_cast<std::chrono::nanoseconds>(d)) {}
  explicit Ticker(std::chrono::nanoseconds period);
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;
  ~Ticker();
  void stop();
  void reset(std::chrono::nanoseconds period);
  Chan<Clock::time_point> C;

 private:
  detail::TimerBox* box_;
};

// after: a channel that receives the time once, d from now (Go's time.After).
Chan<Clock::time_point> after(std::chrono::nanoseconds d);
// after_func: runs f in its own goroutine d from now; the returned Timer can stop it (its C is nil).
Timer after_func_timer(std::chrono::nanoseconds d, std::function<void()> f);
template <class Rep, class Period, class F>
Timer after_func(std::chrono::duration<Rep, Period> d, F&& f) {
  return after_func_timer(std::chrono::duration_cast<std::chrono::nanoseconds>(d), std::function<void()>(std::forward<F>(f)));
}

}  // namespace mpg
