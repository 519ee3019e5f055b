// poller.hpp: the epoll backend shared by the reactor (src/reactor) and the goroutine netpoller.
//
// What it does and does not do. The poller registers descriptors with an interest set (read,
// write, level- or edge-triggered), waits for readiness, and breaks a blocked wait from any
// thread through an eventfd. It knows nothing of goroutines, loops or handlers: each
// registration carries one opaque `void*` chosen by the caller.
//
// Why generations. epoll reports events by the data word stored at registration. If a batch
// returned by one epoll_wait holds an event for fd 7 and, while the caller dispatches an earlier
// event of that batch, fd 7 is closed and the number reused by a new registration, the late event
// would reach the new user. So every registration of a descriptor number gets a fresh 32-bit
// generation, the data word is (generation << 32 | fd), and `resolve()` returns the user pointer
// only while that same registration is still current. The check is made at dispatch time, not
// at wait time, which is what makes it correct within one batch.
//
// Threads. `wake()` may be called from any thread (and from a signal handler). Everything else
// (add, modify, remove, wait, resolve) must be serialized by the caller: the reactor calls them
// from its loop thread only; a netpoller that registers from many threads guards them with its
// own lock (the registration table may grow on add).
#pragma once
#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "mpg/poll/unique_fd.hpp"

namespace mpg::poll {

// Interest bits for add() and modify().
inline constexpr std::uint32_t kWantRead = 1u << 0;
inline constexpr std::uint32_t kWantWrite = 1u << 1;
// kEdge: edge-triggered (EPOLLET). The user must then read or write until EAGAIN before it can
// expect another event; the netpoller registers once, ET, both directions, as Go does.
inline constexpr std::uint32_t kEdge = 1u << 2;

// Ready bits in Event::ready.
inline constexpr std::uint32_t kReadable = 1u << 0;
inline constexpr std::uint32_t kWritable = 1u << 1;
// kHangup: the peer closed (EPOLLHUP or EPOLLRDHUP); data may still be readable before EOF.
inline constexpr std::uint32_t kHangup = 1u << 2;
inline constexpr std::uint32_t kError = 1u << 3;
// kUrgent: TCP urgent data is pending (EPOLLPRI; asked for only with kEdge and kWantRead, and
// reported with kReadable). A read stops short at the urgent mark with data still queued behind
// it, so for this socket a short read no longer proves it empty.
inline constexpr std::uint32_t kUrgent = 1u << 4;

// Event: one readiness report; `tag` identifies the registration (fd and generation).
struct Event {
  std::uint64_t tag = 0;
  std::uint32_t ready = 0;
  int fd() const { return static_cast<int>(tag & 0xffffffffu); }
  std::uint32_t generation() const { return static_cast<std::uint32_t>(tag >> 32); }
};

// Poller: one epoll instance plus its wake-up eventfd; owned by one reactor loop or by the
// netpoller; wake() from any thread, every other method serialized by the owner (see above).
class Poller {
 public:
  // kMaxBatch: events taken per epoll_wait. 256 bounds the time one wake-up spends dispatching
  // before timers and queued tasks get their turn, and is plenty for 1,000 busy connections.
  static constexpr int kMaxBatch = 256;

  Poller();  // aborts with a message if epoll or eventfd cannot be created (no fds left)
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // add: registers `fd` (not yet registered) with `interest` and `user`; the user pointer comes
  // back from resolve(). Returns 0, or an errno value from epoll_ctl.
  int add(int fd, std::uint32_t interest, void* user);
  // modify: changes the interest of a registered fd (0 means: registered, no events wanted). In
  // edge-triggered mode this also re-arms the edge, so a ready fd reports again.
  int modify(int fd, std::uint32_t interest);
  // remove: unregisters `fd` and retires its generation, so events already returned for it are
  // dropped by resolve(). Call it before closing the fd.
  void remove(int fd);
  // registered: whether `fd` has a current registration.
  bool registered(int fd) const;

  // wait: blocks up to `timeout_ms` (-1: forever, 0: poll) and fills `out` with at most
  // out.size() events; wake-ups are consumed here and not reported. Returns the count (0 on
  // timeout, wake-up or EINTR). After it returns, the caller must look at whatever work the
  // wakers published (wake() may skip its syscall while a wake-up is already pending).
  int wait(std::span<Event> out, int timeout_ms);
  // wait_ns: as wait(), with a timeout in nanoseconds (-1: forever), through epoll_pwait2 where
  // the kernel has it (5.11+), else rounded up to whole milliseconds. The netpoller sleeps until
  // the next runtime timer this way: millisecond rounding would make every timer up to 1 ms late.
  int wait_ns(std::span<Event> out, std::int64_t timeout_ns);
  // resolve: the user pointer of the registration that produced `e`, or nullptr if that
  // registration has been removed since (stale event).
  void* resolve(const Event& e) const;
  // prefetch: starts loading the registration `e` resolves through, for a caller that will
  // resolve it a few events later (with 1,000 descriptors the table is past L1).
  void prefetch(const Event& e) const;
  // synthetic: an event carrying the tag of fd's current registration, for a caller that re-posts
  // work to itself (an edge-triggered reader out of budget) and wants it checked by resolve()
  // like a real event.
  Event synthetic(int fd, std::uint32_t ready) const;

  // wake: makes a blocked or the next wait() return. Any thread; async-signal-safe.
  void wake();

  // wakeups_written: how many times wake() actually wrote the eventfd (for tests).
  std::uint64_t wakeups_written() const { return wakeups_written_.load(std::memory_order_relaxed); }

 private:
  // Slot: the registration state of one descriptor number (index = fd).
  struct Slot {
    std::uint32_t generation = 0;  // bumped on every add, so a removed one never matches again
    bool live = false;
    void* user = nullptr;
  };
  static constexpr std::uint64_t kWakeTag = ~std::uint64_t{0};
  // collect: raw_[0, n) -> out. A blocking wait consumes a wake-up; a non-blocking one leaves it
  // (the eventfd stays readable), so a poll that did not sleep cannot swallow the wake-up meant
  // for one that is about to (Go's netpoll reads its wake-up pipe only when it blocks).
  int collect(std::span<Event> out, int n, bool blocking);

  UniqueFd epoll_;
  UniqueFd wake_fd_;
  std::vector<Slot> slots_;
  std::vector<epoll_event> raw_;
  // wake_pending_: set by the first wake() after a wait consumed the eventfd; later wake()s skip
  // the write. seq_cst on both sides: the waker publishes its work before the exchange, the
  // waiter clears the flag before it looks at the work (see wait()).
  std::atomic<bool> wake_pending_{false};
  std::atomic<std::uint64_t> wakeups_written_{0};
};

}  // namespace mpg::poll
