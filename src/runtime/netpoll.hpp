// netpoll.hpp: the netpoller: goroutines block on sockets, only the goroutine parks (Go's
// netpoll.go + netpoll_epoll.go).
//
// The problem. Code reads a socket in plain blocking style; the descriptor is non-blocking
// underneath, so read() says EAGAIN and the goroutine must sleep until the kernel has data, then
// run again, without an OS thread per socket and without losing the wake-up that races with
// going to sleep.
//
// The approach, Go's:
//  - One epoll instance per run (poll::Poller, generations and all). Each descriptor is
//    registered once, edge-triggered, for both directions; its PollDesc is the user pointer.
//  - A PollDesc has two wait slots, rg and wg, each a word that is kNil, kReady, kWait or the
//    parked G. A reader that got EAGAIN moves kNil -> kWait, parks, and after it is off its
//    stack the park commit CASes kWait -> G. Readiness (netpoll) and errors (close, deadline)
//    CAS the slot to kReady or kNil and take the G if one was there. Whichever side comes
//    second sees the other's mark, so a readiness event between the EAGAIN and the park is
//    never lost: the commit fails and the G runs on.
//  - Deadlines are runtime timers (one per direction), validated by the seq the timer was armed
//    with, so a deadline moved while its timer fires cannot time out the new one.
//  - Scheduler side (sched.cpp, sysmon.cpp): an M that runs out of work polls without blocking
//    before it steals; one idle M sleeps in epoll_wait until the next timer (replacing the futex
//    timer sleep once the netpoller exists); sysmon polls when nobody has for 10 ms.
//  - Registration (add/remove) and event dispatch serialize on one lock, so once remove()
//    returns no event of that registration reaches the PollDesc, which then can be reused.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>

#include <source_location>
#include <utility>

#include "mpg/detail/spawn.hpp"
#include "runtime/lock.hpp"
#include "runtime/timers.hpp"

namespace mpg::detail {

struct G;

// GList: Gs the netpoller makes runnable, linked through schedlink, all still Waiting.
struct GList {
  G* head = nullptr;
  G* tail = nullptr;
  int n = 0;
  void push(G* g);
};

// NotifyFn: the readiness of a descriptor registered with netpoll_open_notify: an event with
// read, hang-up or error readiness (hup: it carried a hang-up or an error). It runs on the M
// that polls, under the registration lock, so once netpoll_close has returned no call is running
// or to come. It must not block, take a goroutine lock, or open or close descriptors; it may
// start goroutines with netpoll_go, which run when the poll returns, on the poller's P.
using NotifyFn = void (*)(void* arg, bool hup, GList& out);

// Errors of prepare/wait (Go's pollNoError, pollErrClosing, pollErrTimeout).
enum class PollErr : std::uint8_t { None, Closing, Timeout };

// PollTimers: a descriptor's deadline timers and the seq each was armed with (0: not armed).
// Made by the descriptor's first deadline and kept with it through the pool: an event-loop
// server's descriptors (the hybrid's) never have a deadline, and the two nodes were more than
// half of a PollDesc (112 of 200 bytes) per connection (docs/net.md).
struct PollTimers {
  TimerNode rt, wt;                       // fire -> deadline_fire
  std::uint64_t rseq = 0, wseq = 0;
};

// PollDesc: the netpoller's state of one descriptor. Pooled for the run; never freed while it
// runs (late timer callbacks and events may still look at a retired one, and must find it sane).
struct PollDesc {
  static constexpr std::uintptr_t kNil = 0, kReady = 1, kWait = 2;
  int fd = -1;
  std::atomic<std::uintptr_t> rg{kNil}, wg{kNil};
  Lock lock;                              // guards timers, and closing's writes
  std::atomic<bool> closing{false};
  // hint_off: a short read no longer proves this socket empty, because an event reported what a
  // read can stop short of: the peer's shutdown or an error (EPOLLRDHUP, EPOLLHUP, EPOLLERR: a
  // FIN or an error queued behind the data) or TCP urgent data (EPOLLPRI: a read stops at the
  // urgent mark with data behind it). Readers that skip the read after a short one (net's read
  // hint, the hybrid's burst) must not. Sticky; set before the readiness it came with is
  // published, so a reader that consumed that readiness sees it.
  std::atomic<bool> hint_off{false};
  std::atomic<std::int64_t> rd{0}, wd{0};  // deadline: 0 none, < 0 expired, else nanotime
  std::unique_ptr<PollTimers> timers;     // (lock) null until the first deadline; never reset
  NotifyFn notify = nullptr;              // set: read readiness calls it (no read wait slot)
  // notify_arg: notify's argument; without notify, a hint: memory the reader touches first when
  // it wakes (net's NetFd: its reference count and lock), which the poller prefetches as it
  // readies the reader, so the miss overlaps the poll's other work instead of stalling the woken
  // G (docs/net.md). One word for both: a PollDesc is 80 bytes per connection.
  void* notify_arg = nullptr;
  PollDesc* next_free = nullptr;
};
static_assert(sizeof(PollDesc) <= 80, "a PollDesc per connection: keep it small (docs/net.md)");

// short_read_drained: the read hint's rule (docs/net.md), one place for its users (mpg::net's
// Conn::read, the hybrid server's burst). A TCP read that returned `got` > 0 of the `asked`
// bytes left the socket empty, and data that comes later raises a new edge, so the next read
// may wait for readiness instead of reading for an EAGAIN; unless hint_off says a short read
// proves nothing on this descriptor any more. TCP only: the caller knows its socket's kind.
inline bool short_read_drained(const PollDesc* pd, std::size_t got, std::size_t asked) {
  return got < asked && !pd->hint_off.load(std::memory_order_acquire);
}

// netpoll_open: registers fd (non-blocking already) and returns its PollDesc, or nullptr with
// *err = errno.
PollDesc* netpoll_open(int fd, int* err, const void* hint = nullptr);  // hint: see notify_arg
// netpoll_open_notify: registers fd so that read readiness calls notify(arg, ...) instead of
// waking a goroutine parked in the read slot (the write slot works as usual). The event-loop
// way to use the netpoller: nobody waits for a read, and each descriptor so registered counts as
// a waiter (the Ms keep polling while it is registered). *publish (if given) is set to the
// PollDesc before the descriptor is registered, so the first callback, and any goroutine it
// starts, finds it there. nullptr with *err = errno on failure.
PollDesc* netpoll_open_notify(int fd, NotifyFn notify, void* arg, PollDesc** publish, int* err);
// netpoll_go: from a NotifyFn, starts f as a goroutine that runs once the poll returns.
void spawn_polled(G* g, const ClosureFns& fns, const std::source_location& where, GList& out);
template <class F>
void netpoll_go(GList& out, F&& f, const std::source_location& where = std::source_location::current()) {
  SpawnSlot s = spawn_begin(0);
  ClosureFns fns = place_closure(s, std::forward<F>(f));
  spawn_polled(s.g, fns, where, out);
}
// netpoll_close: unregisters and returns pd to the pool. The caller evicted it first and no
// goroutine waits on it; the caller closes the fd afterwards.
void netpoll_close(PollDesc* pd);
// netpoll_prepare: the error a read ('r') or write ('w') would get now (closed, timed out).
PollErr netpoll_prepare(PollDesc* pd, char mode);
// netpoll_wait: parks the calling goroutine until the descriptor may be ready in `mode`, or an
// error (close, deadline). Spurious readiness is possible: retry the syscall.
PollErr netpoll_wait(PollDesc* pd, char mode);
// SendResult: what netpoll_send_all did: the bytes sent and, if it stopped short, why (errno, or
// the poll error of a close or a deadline while it waited).
struct SendResult {
  std::size_t done = 0;
  int err = 0;
  PollErr perr = PollErr::None;
  bool ok() const { return err == 0 && perr == PollErr::None; }
};
// netpoll_send_all: sends all n bytes on pd's non-blocking stream socket fd (MSG_NOSIGNAL),
// parking the calling goroutine whenever the socket is full: the one send loop of its users
// (mpg::net's Conn::write, the hybrid server's responses).
SendResult netpoll_send_all(int fd, PollDesc* pd, const void* buf, std::size_t n);
// netpoll_set_deadline: mode 'r', 'w' or 'b' (both); when: 0 clears, <= now expires at once
// (waking waiters with Timeout), else a nanotime.
void netpoll_set_deadline(PollDesc* pd, std::int64_t when, char mode);
// netpoll_evict: the descriptor is closing: wakes every waiter with Closing, stops the timers.
void netpoll_evict(PollDesc* pd);
// netpoll_run_id: identifies the current run's netpoller (0: none); PollDescs die with the run.
std::uint64_t netpoll_run_id();

// --- Scheduler side --------------------------------------------------------------------------

// netpoll_active: the netpoller exists and goroutines wait on it (worth polling).
bool netpoll_active();
bool netpoll_inited();
// netpoll: polls (delay_ns < 0: block, 0: do not block, > 0: at most that long) and returns the
// readied Gs, still Waiting, linked through schedlink; *n counts them. Returns nullptr at once if
// another M is polling.
G* netpoll(std::int64_t delay_ns, int* n);
// netpoll_break: makes a blocked netpoll return.
void netpoll_break();
// netpoll_last: coarse_nanotime of the last poll (sysmon polls when nobody has for 10 ms).
std::int64_t netpoll_last();
// inject_glist: makes a list from netpoll runnable: onto the current P's queue if the caller has
// a P, else the global queue with Ms started for idle Ps.
void inject_glist(G* list, int n);
// netpoll_test_hook: if set, netpoll() calls it between epoll_wait and dispatching the events
// (tests use it to close and reuse a descriptor inside that window).
extern void (*netpoll_test_hook)();
extern PollDesc* netpoll_test_hook_arg;
// netpoll_shutdown: frees the poller and every PollDesc (end of mpg::run).
void netpoll_shutdown();

}  // namespace mpg::detail
