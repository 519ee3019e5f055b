// poller.cpp: the epoll backend (see poller.hpp for the contract and the generation scheme).
#include "poll/poller.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mpg::poll {
namespace {

std::uint32_t to_epoll(std::uint32_t interest) {
  // EPOLLRDHUP only with reads: a peer's FIN is then reported as a hang-up, but a user that
  // paused reading (backpressure) must not be woken over and over, level-triggered, by a FIN it
  // has chosen not to read yet. EPOLLHUP and EPOLLERR are always reported by the kernel.
  // EPOLLPRI only edge-triggered: there it tells a reader that skips a read after a short one
  // (net's read hint) that the socket stopped short at an urgent mark; level-triggered users
  // read again anyway.
  std::uint32_t ev = 0;
  if (interest & kWantRead) ev |= EPOLLIN | EPOLLRDHUP;
  if (interest & kWantWrite) ev |= EPOLLOUT;
  if (interest & kEdge) ev |= EPOLLET;
  if ((interest & kEdge) && (interest & kWantRead)) ev |= EPOLLPRI;
  return ev;
}

std::uint32_t from_epoll(std::uint32_t ev) {
  std::uint32_t r = 0;
  if (ev & (EPOLLIN | EPOLLPRI)) r |= kReadable;
  if (ev & EPOLLOUT) r |= kWritable;
  if (ev & (EPOLLHUP | EPOLLRDHUP)) r |= kHangup;
  if (ev & EPOLLERR) r |= kError;
  if (ev & EPOLLPRI) r |= kUrgent;
  return r;
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "mpg poll: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

}  // namespace

Poller::Poller() : raw_(kMaxBatch) {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) die("epoll_create1");
  wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_) die("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &ev) != 0) die("epoll_ctl(eventfd)");
}

int Poller::add(int fd, std::uint32_t interest, void* user) {
  if (fd < 0) return EBADF;
  if (static_cast<std::size_t>(fd) >= slots_.size()) slots_.resize(static_cast<std::size_t>(fd) + 1);
  Slot& s = slots_[static_cast<std::size_t>(fd)];
  if (s.live) return EEXIST;
  std::uint32_t gen = s.generation + 1;
  epoll_event ev{};
  ev.events = to_epoll(interest);
  ev.data.u64 = (std::uint64_t{gen} << 32) | static_cast<std::uint32_t>(fd);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return errno;
  s.generation = gen;
  s.live = true;
  s.user = user;
  return 0;
}

int Poller::modify(int fd, std::uint32_t interest) {
  if (!registered(fd)) return ENOENT;
  const Slot& s = slots_[static_cast<std::size_t>(fd)];
  epoll_event ev{};
  ev.events = to_epoll(interest);
  ev.data.u64 = (std::uint64_t{s.generation} << 32) | static_cast<std::uint32_t>(fd);
  return ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : errno;
}

void Poller::remove(int fd) {
  if (!registered(fd)) return;
  Slot& s = slots_[static_cast<std::size_t>(fd)];
  // The generation stays; the next add() bumps it. EPOLL_CTL_DEL can only fail here if the
  // caller already closed the fd, which the kernel then removed from the set by itself.
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  s.live = false;
  s.user = nullptr;
}

bool Poller::registered(int fd) const {
  return fd >= 0 && static_cast<std::size_t>(fd) < slots_.size() &&
         slots_[static_cast<std::size_t>(fd)].live;
}

int Poller::wait(std::span<Event> out, int timeout_ms) {
  int cap = static_cast<int>(out.size() < raw_.size() ? out.size() : raw_.size());
  return collect(out, ::epoll_wait(epoll_.get(), raw_.data(), cap, timeout_ms), timeout_ms != 0);
}

int Poller::wait_ns(std::span<Event> out, std::int64_t timeout_ns) {
  int cap = static_cast<int>(out.size() < raw_.size() ? out.size() : raw_.size());
  // 0 means "no epoll_pwait2 here" once the kernel said ENOSYS; -1 unknown; 1 works.
  static std::atomic<int> have_pwait2{-1};
  if (timeout_ns >= 0 && have_pwait2.load(std::memory_order_relaxed) != 0) {
    timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000), static_cast<long>(timeout_ns % 1'000'000'000)};
    int n = ::epoll_pwait2(epoll_.get(), raw_.data(), cap, &ts, nullptr);
    if (n >= 0 || errno != ENOSYS) {
      have_pwait2.store(1, std::memory_order_relaxed);
      return collect(out, n, timeout_ns != 0);
    }
    have_pwait2.store(0, std::memory_order_relaxed);
  }
  int ms = timeout_ns < 0 ? -1 : static_cast<int>((timeout_ns + 999'999) / 1'000'000);
  return collect(out, ::epoll_wait(epoll_.get(), raw_.data(), cap, ms), ms != 0);
}

int Poller::collect(std::span<Event> out, int n, bool blocking) {
  if (n < 0) {
    if (errno == EINTR) return 0;
    die("epoll_wait");
  }
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (raw_[static_cast<std::size_t>(i)].data.u64 == kWakeTag) {
      // Only a wait that blocks consumes the wake-up (see collect in poller.hpp): a non-blocking
      // poll between a waker and the sleeper it targets would otherwise take it and leave that
      // sleeper in epoll_wait (found by review; the netpoller breaks a poller that must not
      // sleep on, netpoll.cpp's waiter_left). Level-triggered, it is seen again next time.
      if (!blocking) continue;
      // Drain first, then clear the flag. The other order loses wake-ups: a wake() between the
      // clear and the drain would write, have its write drained, and leave the flag set, so
      // every later wake() would skip its write while the caller sleeps. In this order a wake()
      // before the clear skips its write but published its work before, and the caller looks at
      // the work after this returns; a wake() after the clear writes, at worst one spurious
      // wake-up later.
      std::uint64_t v;  // one read takes the whole counter and resets it
      [[maybe_unused]] ssize_t r = ::read(wake_fd_.get(), &v, sizeof v);
      wake_pending_.store(false, std::memory_order_seq_cst);
      continue;
    }
    out[static_cast<std::size_t>(k)].tag = raw_[static_cast<std::size_t>(i)].data.u64;
    out[static_cast<std::size_t>(k)].ready = from_epoll(raw_[static_cast<std::size_t>(i)].events);
    k++;
  }
  return k;
}

void* Poller::resolve(const Event& e) const {
  int fd = e.fd();
  if (!registered(fd)) return nullptr;
  const Slot& s = slots_[static_cast<std::size_t>(fd)];
  return s.generation == e.generation() ? s.user : nullptr;
}

void Poller::prefetch(const Event& e) const {
  auto fd = static_cast<std::size_t>(static_cast<std::uint32_t>(e.fd()));
  if (fd < slots_.size()) __builtin_prefetch(&slots_[fd]);
}

Event Poller::synthetic(int fd, std::uint32_t ready) const {
  Event e;
  std::uint32_t gen = registered(fd) ? slots_[static_cast<std::size_t>(fd)].generation : 0;
  e.tag = (std::uint64_t{gen} << 32) | static_cast<std::uint32_t>(fd);
  e.ready = ready;
  return e;
}

void Poller::wake() {
  if (wake_pending_.exchange(true, std::memory_order_seq_cst)) return;
  std::uint64_t one = 1;
  // A full eventfd counter (2^64-2) cannot happen: every wait drains it.
  [[maybe_unused]] ssize_t w = ::write(wake_fd_.get(), &one, sizeof one);
  wakeups_written_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace mpg::poll
