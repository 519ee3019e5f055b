// connection_manager_test.cpp: the limit, the alarm raised once per crossing (with hysteresis)
// and logged at most once per interval, the idle timeout it shortens, keep-alive options on a
// real socket, counts exact under 8 threads, the metrics.
#include "mpg/kit/connection_manager.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mpg/kit/registry.hpp"

namespace mpg::kit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Manager: a manager of 10 connections (alarm at 8, clear below 7) logging into a vector.
struct Manager {
  ManualClock clock;
  std::mutex mu;
  std::vector<std::string> lines;
  ConnectionManager m;

  explicit Manager(ConnectionPolicy p = {.max_connections = 10}) : m(with_log(std::move(p))) {}
  ConnectionPolicy with_log(ConnectionPolicy p) {
    p.time = clock.source();
    p.log = [this](std::string_view l) {
      std::lock_guard<std::mutex> g(mu);
      lines.emplace_back(l);
    };
    return p;
  }
  void open(int n) {
    for (int i = 0; i < n; i++) ASSERT_TRUE(m.on_open());
  }
  void close(int n) {
    for (int i = 0; i < n; i++) m.on_close();
  }
};

TEST(ConnectionManager, ThresholdsFromRatios) {
  Manager t;
  EXPECT_EQ(t.m.alarm_at(), 8u);
  EXPECT_EQ(t.m.clear_at(), 7u);
  ConnectionManager big;  // the defaults: 16,000
  EXPECT_EQ(big.alarm_at(), 12'800u);
  EXPECT_EQ(big.clear_at(), 11'200u);
}

TEST(ConnectionManager, AlarmOncePerCrossingWithHysteresis) {
  Manager t;
  t.open(7);
  EXPECT_FALSE(t.m.alarmed());
  t.open(1);  // 8: 80% of 10
  EXPECT_TRUE(t.m.alarmed());
  EXPECT_EQ(t.m.crossings(), 1u);
  ASSERT_EQ(t.lines.size(), 1u);
  EXPECT_EQ(t.lines[0], "mpg: connections: 8 open, at or over 80% of the limit 10");
  // Hovering at the line is not a new crossing: 9, 8, 9, 8, 7.
  t.open(1);
  t.close(1);
  t.open(1);
  t.close(2);
  EXPECT_TRUE(t.m.alarmed());  // 7 is not below 70%
  t.open(1);
  EXPECT_EQ(t.m.crossings(), 1u);
  t.close(2);  // 6: cleared
  EXPECT_FALSE(t.m.alarmed());
  t.open(2);  // 8 again: a second crossing, within the log interval: counted, not logged
  EXPECT_EQ(t.m.crossings(), 2u);
  EXPECT_EQ(t.lines.size(), 1u);
  t.close(2);
  t.clock.advance(seconds(10));
  t.open(2);  // a third, after the interval: logged, with the one not logged
  EXPECT_EQ(t.m.crossings(), 3u);
  ASSERT_EQ(t.lines.size(), 2u);
  EXPECT_EQ(t.lines[1],
            "mpg: connections: 8 open, at or over 80% of the limit 10 (1 earlier crossings not "
            "logged)");
}

TEST(ConnectionManager, RefusesBeyondTheLimit) {
  Manager t;
  t.open(10);
  EXPECT_FALSE(t.m.on_open());
  EXPECT_FALSE(t.m.on_open());
  EXPECT_EQ(t.m.open(), 10u);
  EXPECT_EQ(t.m.refused(), 2u);
  EXPECT_EQ(t.m.accepted(), 10u);
  t.close(1);
  EXPECT_TRUE(t.m.on_open());
}

TEST(ConnectionManager, IdleTimeoutShortensWhileAlarmed) {
  Manager t({.max_connections = 10,
             .idle_timeout = milliseconds(60'000),
             .idle_timeout_alarmed = milliseconds(5'000)});
  EXPECT_EQ(t.m.idle_timeout(), milliseconds(60'000));
  t.open(8);
  EXPECT_EQ(t.m.idle_timeout(), milliseconds(5'000));
  t.close(2);
  EXPECT_EQ(t.m.idle_timeout(), milliseconds(60'000));
}

TEST(ConnectionManager, EightThreadsAroundTheLineCountExactly) {
  // Threads open and close around the alarm line: open() is never above the limit, the counts
  // are exact, the alarm ends off, and every crossing is accounted for by the log lines.
  // 8 threads holding up to 2 each against a limit of 4 (alarm at 4, clear below 3): the line
  // is crossed, and the limit reached, all the time.
  Manager t({.max_connections = 4, .alarm_log_interval = milliseconds(0)});
  std::atomic<int> admitted{0}, refused{0}, ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; i++)
    threads.emplace_back([&] {
      for (ready++; ready.load() < 8;) std::this_thread::yield();  // start together
      for (int k = 0; k < 20'000; k++) {
        int got = 0;
        for (int j = 0; j < 2; j++) {
          if (t.m.on_open()) {
            got++;
            EXPECT_LE(t.m.open(), 4u);
          } else {
            refused++;
          }
        }
        admitted += got;
        std::this_thread::yield();  // hold them while other threads run
        for (int j = 0; j < got; j++) t.m.on_close();
      }
    });
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(t.m.open(), 0u);
  EXPECT_FALSE(t.m.alarmed());
  EXPECT_EQ(std::uint64_t(admitted.load()), t.m.accepted());
  EXPECT_EQ(std::uint64_t(refused.load()), t.m.refused());
  EXPECT_EQ(admitted + refused, 8 * 20'000 * 2);
  // Every crossing is in exactly one line's count (its own, or a later line's "N earlier"),
  // or still waiting for the next line. Two crossings racing to log may share one line.
  std::uint64_t reported = 0;
  for (const std::string& l : t.lines) {
    std::size_t at = l.find(" (");
    reported += 1 + (at == std::string::npos ? 0 : std::stoull(l.substr(at + 2)));
  }
  EXPECT_EQ(reported + t.m.unlogged(), t.m.crossings());
  EXPECT_GT(t.lines.size(), 0u);
  EXPECT_GT(refused.load(), 0);
}

TEST(KeepAlive, AppliesToASocket) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  KeepAlive ka{.enabled = true, .idle = seconds(42), .interval = seconds(7), .count = 3};
  EXPECT_EQ(ka.apply(fd), 0);
  auto get = [fd](int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    getsockopt(fd, level, name, &v, &len);
    return v;
  };
  EXPECT_EQ(get(SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(get(IPPROTO_TCP, TCP_KEEPIDLE), 42);
  EXPECT_EQ(get(IPPROTO_TCP, TCP_KEEPINTVL), 7);
  EXPECT_EQ(get(IPPROTO_TCP, TCP_KEEPCNT), 3);
  EXPECT_EQ(KeepAlive{.enabled = false}.apply(fd), 0);
  EXPECT_EQ(get(SOL_SOCKET, SO_KEEPALIVE), 0);
  close(fd);
  EXPECT_EQ(ka.apply(fd), EBADF);
}

TEST(ConnectionManager, Metrics) {
  Manager t;
  Registry r;
  t.m.register_metrics(r, "x_");
  t.open(10);
  t.m.on_open();
  EXPECT_EQ(r.render(),
            "# HELP x_connections_open Connections open now.\n"
            "# TYPE x_connections_open gauge\n"
            "x_connections_open 10\n"
            "# HELP x_connections_limit The connection limit.\n"
            "# TYPE x_connections_limit gauge\n"
            "x_connections_limit 10\n"
            "# HELP x_connections_alarm 1 while open connections are at or over the alarm share "
            "of the limit.\n"
            "# TYPE x_connections_alarm gauge\n"
            "x_connections_alarm 1\n"
            "# HELP x_connections_accepted_total Connections admitted.\n"
            "# TYPE x_connections_accepted_total counter\n"
            "x_connections_accepted_total 10\n"
            "# HELP x_connections_refused_total Connections closed at once because the limit "
            "was reached.\n"
            "# TYPE x_connections_refused_total counter\n"
            "x_connections_refused_total 1\n"
            "# HELP x_connections_alarms_total Times the open count crossed up into the alarm.\n"
            "# TYPE x_connections_alarms_total counter\n"
            "x_connections_alarms_total 1\n");
}

}  // namespace
}  // namespace mpg::kit
