// drain.cpp: graceful shutdown's state word and its wait.
//
// The drain finishes at the first instant after begin() with nothing in flight: either the
// leave() that takes the count from one to zero finishes it in the same CAS, or try_finish()
// finds it at zero. So the drain cannot be starved by a stream of requests that never leaves
// the count at zero long enough for a waiter to wake up and look (a waiter is woken only to
// return). Why no request slips past the end: finishing is a CAS that expects exactly
// "draining, zero in flight" (or, in leave(), "draining, one in flight": its own); an enter()
// is an atomic add to the same word, so it either comes first (the CAS fails) or sees kFinished
// and refuses. Why wait() cannot miss its wake-up: it tests the word while holding mu_, and
// leave() takes mu_ before notifying, so a finish either happened before the test (which then
// succeeds) or its notify comes after the waiter sleeps.
#include "mpg/kit/drain.hpp"

#include "mpg/kit/refusal.hpp"

namespace mpg::kit {

Admit Drain::enter() {
  std::uint64_t old = state_.fetch_add(kOne, std::memory_order_acq_rel);
  if (old & kFinished) return Admit::kRefuse;
  return old & kDraining ? Admit::kServeAndClose : Admit::kServe;
}

void Drain::leave() {
  std::uint64_t old = state_.load(std::memory_order_relaxed);
  std::uint64_t next;
  do {
    // The last request out of a drain that has not finished finishes it.
    next = old == (kOne | kDraining) ? (kDraining | kFinished) : old - kOne;
  } while (!state_.compare_exchange_weak(old, next, std::memory_order_acq_rel,
                                         std::memory_order_relaxed));
  if (next == (kDraining | kFinished) && old == (kOne | kDraining)) {
    std::lock_guard<std::mutex> g(mu_);
    cv_.notify_all();
  }
}

bool Drain::begin() { return !(state_.fetch_or(kDraining, std::memory_order_acq_rel) & kDraining); }

bool Drain::try_finish() {
  begin();
  std::uint64_t expected = kDraining;
  if (state_.compare_exchange_strong(expected, kDraining | kFinished, std::memory_order_acq_rel))
    return true;
  return expected & kFinished;  // finished earlier; else requests are in flight
}

bool Drain::wait(TimePoint deadline) {
  begin();
  std::unique_lock<std::mutex> lock(mu_);
  // The deadline is steady_clock's, the clock condition_variable waits on.
  return cv_.wait_until(lock, deadline, [this] { return try_finish(); });
}

http::Middleware Drain::middleware() {
  return [this](http::Handler next) -> http::Handler {
    return [this, next = std::move(next)](const http::Request& req, http::Response& res) {
      Guard g(*this);
      if (g.admit() == Admit::kRefuse) {
        refuse(res, 503, Nanos(0), "shutting down\n");
        res.close_connection();
        return;
      }
      next(req, res);
      if (g.admit() == Admit::kServeAndClose || draining()) res.close_connection();
    };
  };
}

}  // namespace mpg::kit
