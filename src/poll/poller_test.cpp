// poller_test.cpp: the epoll backend: readiness, edge triggering, generations, wake-ups.
#include "poll/poller.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <thread>

namespace mpg::poll {
namespace {

struct Pipe {
  UniqueFd r, w;
  Pipe() {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    r.reset(p[0]);
    w.reset(p[1]);
  }
};

TEST(Poller, ReportsReadableWithUserData) {
  Poller p;
  Pipe a;
  int tag = 0;
  ASSERT_EQ(p.add(a.r.get(), kWantRead, &tag), 0);
  std::array<Event, 8> ev;
  EXPECT_EQ(p.wait(ev, 0), 0);
  ASSERT_EQ(::write(a.w.get(), "x", 1), 1);
  ASSERT_EQ(p.wait(ev, 1000), 1);
  EXPECT_TRUE(ev[0].ready & kReadable);
  EXPECT_EQ(p.resolve(ev[0]), &tag);
}

TEST(Poller, LevelTriggeredRepeatsEdgeTriggeredDoesNot) {
  Poller p;
  Pipe lt, et;
  ASSERT_EQ(p.add(lt.r.get(), kWantRead, nullptr), 0);
  ASSERT_EQ(p.add(et.r.get(), kWantRead | kEdge, nullptr), 0);
  ASSERT_EQ(::write(lt.w.get(), "x", 1), 1);
  ASSERT_EQ(::write(et.w.get(), "x", 1), 1);
  std::array<Event, 8> ev;
  EXPECT_EQ(p.wait(ev, 1000), 2);
  // Nothing was read: level-triggered reports again, edge-triggered waits for a new edge.
  ASSERT_EQ(p.wait(ev, 0), 1);
  EXPECT_EQ(ev[0].fd(), lt.r.get());
  // modify() re-arms the edge.
  ASSERT_EQ(p.modify(et.r.get(), kWantRead | kEdge), 0);
  EXPECT_EQ(p.wait(ev, 0), 2);
}

// TcpPair: both ends of a loopback TCP connection, the accepted end non-blocking.
struct TcpPair {
  UniqueFd c, s;
  TcpPair() {
    UniqueFd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(l.get(), 1), 0);
    EXPECT_EQ(::getsockname(l.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    c.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    s.reset(::accept4(l.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  }
};

TEST(Poller, EdgeTriggeredReadsReportUrgentData) {
  // kUrgent tells the netpoller that a short read may have stopped at an urgent mark; asked for
  // edge-triggered only (a level-triggered reader reads again anyway). An urgent byte alone is
  // not readable data (tcp_poll), so without EPOLLPRI the edge-triggered socket reports nothing.
  Poller p;
  TcpPair et, lt;
  ASSERT_EQ(p.add(et.s.get(), kWantRead | kEdge, nullptr), 0);
  ASSERT_EQ(p.add(lt.s.get(), kWantRead, nullptr), 0);
  ASSERT_EQ(::send(et.c.get(), "u", 1, MSG_OOB), 1);
  ASSERT_EQ(::send(lt.c.get(), "u", 1, MSG_OOB), 1);
  ASSERT_EQ(::send(lt.c.get(), "d", 1, 0), 1);
  std::array<Event, 8> ev;
  std::uint32_t et_bits = 0, lt_bits = 0;
  bool et_seen = false, lt_seen = false;
  for (int i = 0; i < 20 && !(et_seen && lt_seen); i++) {
    int n = p.wait(ev, 100);
    for (const Event& e : std::span<const Event>(ev.data(), static_cast<std::size_t>(n > 0 ? n : 0))) {
      bool is_et = e.fd() == et.s.get();
      (is_et ? et_seen : lt_seen) = true;
      (is_et ? et_bits : lt_bits) |= e.ready;
    }
  }
  ASSERT_TRUE(et_seen);
  ASSERT_TRUE(lt_seen);
  EXPECT_EQ(et_bits & (kUrgent | kReadable), kUrgent | kReadable);
  EXPECT_TRUE(lt_bits & kReadable);
  EXPECT_FALSE(lt_bits & kUrgent);
}

TEST(Poller, StaleEventAfterFdReuseIsDropped) {
  // The invariant: an event returned for one registration never resolves to the registration
  // that reuses its fd number, even inside the same batch.
  Poller p;
  Pipe a;
  int first = 1, second = 2;
  int fd = a.r.get();
  ASSERT_EQ(p.add(fd, kWantRead, &first), 0);
  ASSERT_EQ(::write(a.w.get(), "x", 1), 1);
  std::array<Event, 8> ev;
  ASSERT_EQ(p.wait(ev, 1000), 1);
  // Close and reuse the number before dispatching the batch.
  p.remove(fd);
  a.r.reset();
  Pipe b;
  ASSERT_EQ(::dup2(b.r.get(), fd), fd);
  ASSERT_EQ(p.add(fd, kWantRead, &second), 0);
  EXPECT_EQ(p.resolve(ev[0]), nullptr);
  EXPECT_EQ(p.resolve(p.synthetic(fd, kReadable)), &second);
  p.remove(fd);
  ::close(fd);
}

TEST(Poller, WakeBreaksBlockedWaitAndCoalesces) {
  Poller p;
  std::array<Event, 8> ev;
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    p.wake();
  });
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p.wait(ev, 10'000), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  t.join();
  // Many wakes before one wait: one eventfd write, one wait consumes it, the next one blocks.
  std::uint64_t before = p.wakeups_written();
  for (int i = 0; i < 100; i++) p.wake();
  EXPECT_EQ(p.wakeups_written() - before, 1u);
  EXPECT_EQ(p.wait(ev, 1000), 0);
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p.wait(ev, 30), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(25));
}

// A wake-up is for a wait that sleeps: a non-blocking wait in between leaves it in place (else a
// poll that did not sleep would take the wake-up meant for the poller about to sleep).
TEST(Poller, NonBlockingWaitLeavesTheWakeUpForTheNextBlockingOne) {
  Poller p;
  std::array<Event, 8> ev;
  p.wake();
  EXPECT_EQ(p.wait(ev, 0), 0);
  EXPECT_EQ(p.wait_ns(ev, 0), 0);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p.wait_ns(ev, 3'000'000'000), 0);  // would sleep 3 s had the wake-up been taken
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p.wait(ev, 30), 0);  // and the blocking wait consumed it
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(25));
}

TEST(Poller, AddTwiceFailsAndRemoveUnknownIsHarmless) {
  Poller p;
  Pipe a;
  ASSERT_EQ(p.add(a.r.get(), kWantRead, nullptr), 0);
  EXPECT_EQ(p.add(a.r.get(), kWantRead, nullptr), EEXIST);
  p.remove(a.r.get());
  p.remove(a.r.get());
  EXPECT_FALSE(p.registered(a.r.get()));
  EXPECT_EQ(p.modify(a.r.get(), kWantRead), ENOENT);
}

}  // namespace
}  // namespace mpg::poll
