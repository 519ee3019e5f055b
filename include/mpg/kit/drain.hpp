// drain.hpp: graceful shutdown's bookkeeping: a draining flag, the requests in flight, and a
// wait for them to finish with a deadline; usable from goroutines, loop threads and plain
// threads.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "mpg/http/handler.hpp"
#include "mpg/kit/time.hpp"

namespace mpg::kit {

// Admit: what a server does with a request that arrives now.
enum class Admit : std::uint8_t {
  kServe,          // serving normally
  kServeAndClose,  // draining: serve it, answer with Connection: close
  kRefuse,         // closed: the drain finished; answer 503 with Connection: close
};

// Drain: one per server. Graceful shutdown, as the servers run it:
//   1. begin(): from now on every response says Connection: close, so keep-alive clients
//      leave after their current request; the server stops accepting.
//   2. The server closes connections that are idle (between requests) at once.
//   3. The drain finishes at the first instant nothing is in flight; from then on enter()
//      refuses, so no request starts after the server was told it is done. wait(deadline)
//      (plain thread) or polling try_finish() (goroutine, loop timer) tells when.
//   4. On true, or when the deadline passed, the server closes what is left.
// The state is one atomic word (in-flight count and two flags): enter() is one atomic add,
// leave() one CAS, and finishing is a CAS no enter() can slip past. The word is shared by all
// threads: two contended atomic operations per request (docs/kit.md has the cost). Thread-safe;
// never blocks except in wait().
class Drain {
 public:
  // enter: a request starts. Every call, whatever it returns, must be matched by leave().
  Admit enter();
  // leave: a request ended; the last one out while draining finishes the drain and wakes
  // wait().
  void leave();

  // Guard: enter() on construction, leave() on destruction.
  class Guard {
   public:
    explicit Guard(Drain& d) : d_(d), admit_(d.enter()) {}
    ~Guard() { d_.leave(); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    Admit admit() const { return admit_; }

   private:
    Drain& d_;
    Admit admit_;
  };

  // begin: starts draining; true for the call that started it.
  bool begin();
  bool draining() const { return state_.load(std::memory_order_acquire) & kDraining; }
  bool finished() const { return state_.load(std::memory_order_acquire) & kFinished; }
  std::uint64_t in_flight() const { return state_.load(std::memory_order_acquire) >> kCountShift; }

  // try_finish: begins draining if not yet; true once the drain is finished (marking it so
  // if nothing is in flight now). Never blocks.
  bool try_finish();
  // wait: until try_finish() is true or `deadline` passes; blocks the calling OS thread
  // on a condition variable. In a goroutine, call it inside mpg::blocking(...) so the P is
  // handed to other goroutines, or poll try_finish() with mpg::sleep. Never on a loop thread.
  bool wait(TimePoint deadline);

  // middleware: counts each request in flight; while draining adds Connection: close to the
  // response; once finished answers 503 + Connection: close without calling the handler. Put
  // it outermost. The Drain must outlive the handlers it wraps.
  http::Middleware middleware();

 private:
  static constexpr std::uint64_t kDraining = 1, kFinished = 2, kCountShift = 2;
  static constexpr std::uint64_t kOne = std::uint64_t(1) << kCountShift;

  // state_: in-flight count << 2 | kFinished | kDraining.
  std::atomic<std::uint64_t> state_{0};
  std::mutex mu_;               // pairs wait() with the wake-up in leave()
  std::condition_variable cv_;  // signalled when the count reaches zero while draining
};

}  // namespace mpg::kit
