// net_test.cpp: mpg::net and the netpoller: echo at scale, deadlines, close, half-close, reset,
// IPv6 and Unix sockets, descriptor reuse, accept out of descriptors, timers beside epoll.
#include "mpg/net.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "mpg/mpg.hpp"
#include "runtime/netpoll.hpp"
#include "runtime/sched.hpp"
#include "runtime/test_util.hpp"

namespace mpg::net {
namespace {

using namespace std::chrono_literals;
using mpg::testing::Rng;
using mpg::testing::scaled;

Clock::time_point in(std::chrono::nanoseconds d) { return Clock::now() + d; }

// listen_local: a TCP listener on 127.0.0.1, any port, and its "host:port".
std::pair<Listener, std::string> listen_local() {
  auto [ln, err] = listen("tcp4", "127.0.0.1:0");
  EXPECT_FALSE(err) << err.message();
  return {ln, "127.0.0.1:" + std::to_string(ln.addr().port())};
}

// connected_pair: both ends of one TCP connection.
std::pair<Conn, Conn> connected_pair() {
  auto [ln, addr] = listen_local();
  auto [c, derr] = dial("tcp", addr);
  EXPECT_FALSE(derr) << derr.message();
  auto [s, aerr] = ln.accept();
  EXPECT_FALSE(aerr) << aerr.message();
  ln.close();
  return {c, s};
}

// read_to_error: reads `chunk` bytes at a time (at most 128) until a read fails; returns what it
// read and that failure.
std::pair<std::string, Error> read_to_error(Conn& c, std::size_t chunk) {
  std::string all;
  char b[128];
  for (;;) {
    auto r = c.read(b, std::min(chunk, sizeof b));
    all.append(b, r.n);
    if (r.err) return {all, r.err};
  }
}

void echo_forever(Conn c) {
  char buf[4096];
  for (;;) {
    auto r = c.read(buf, sizeof buf);
    if (r.n && c.write(buf, r.n).err) break;
    if (r.err) break;
  }
  c.close();
}

// EchoServer: accepts until stop(), a goroutine per connection. stop() closes the listener and
// waits for every goroutine it started, so none outlives the test's mpg::run (a goroutine still
// parked when run returns is abandoned with its stack, as in Go, and its objects leak).
class EchoServer {
 public:
  explicit EchoServer(Listener ln) : ln_(std::move(ln)) {
    wg_.add(1);
    mpg::go([this] {
      for (;;) {
        auto [c, err] = ln_.accept();
        if (err) break;
        wg_.add(1);
        mpg::go([this, c = std::move(c)] {
          echo_forever(c);
          wg_.done();
        });
      }
      wg_.done();
    });
  }
  void stop() {
    ln_.close();
    wg_.wait();
  }

 private:
  Listener ln_;
  mpg::WaitGroup wg_;
};

// check_echo: sends `rounds` messages of random sizes and checks every byte that comes back.
bool check_echo(Conn c, std::uint64_t seed, int rounds) {
  Rng rng{seed};
  std::vector<char> out(8192), in(8192);
  for (int i = 0; i < rounds; i++) {
    std::size_t n = 1 + rng.below(std::uint32_t(out.size()));
    for (std::size_t k = 0; k < n; k++) out[k] = char(rng.next());
    if (c.write(out.data(), n).err) return false;
    auto r = c.read_full(in.data(), n);
    if (r.err || r.n != n || std::memcmp(in.data(), out.data(), n) != 0) return false;
  }
  return true;
}

// raise_nofile: lifts the soft descriptor limit to the hard one; returns the new soft limit.
rlim_t raise_nofile() {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}

// echo_clients: in a goroutine, `pairs` clients dial an in-process EchoServer, wait until every
// connection is open, then each checks `rounds` echoes (check_echo). Returns how many passed;
// *peak is the most connections open at once.
long echo_clients(long pairs, int rounds, long* peak) {
  auto [ln, addr] = listen_local();
  EchoServer server(ln);
  std::atomic<long> ok{0}, open{0}, most{0};
  mpg::WaitGroup dialed, done;
  mpg::Chan<int> start;
  dialed.add(int(pairs));
  done.add(int(pairs));
  for (long i = 0; i < pairs; i++) {
    mpg::go([&, i, addr = addr] {
      auto [c, err] = dial("tcp", addr, 10s);
      dialed.done();
      if (err) {
        done.done();
        return;
      }
      long o = open.fetch_add(1) + 1;
      long p = most.load();
      while (o > p && !most.compare_exchange_weak(p, o)) {
      }
      start.recv();  // every connection is open before any byte moves
      if (check_echo(c, std::uint64_t(i) + 1, rounds)) ok.fetch_add(1);
      c.close();
      open.fetch_sub(1);
      done.done();
    });
  }
  dialed.wait();
  start.close();
  done.wait();
  server.stop();
  if (peak) *peak = most.load();
  return ok.load();
}

TEST(Net, EchoManyConcurrentClientsEveryByteChecked) {
  // Both ends live in this process: 2 descriptors a pair, under the 20,000 cap with room to spare.
  rlim_t lim = raise_nofile();
  // Two goroutines a pair: under TSan (at most ~8,000 fibers) max_live keeps it to 2,000 pairs.
  long pairs = mpg::testing::max_live(std::min<long>(9'900, (long(lim) - 100) / 2));
  ASSERT_GT(pairs, 1000);
  long ok = 0, peak = 0;
  mpg::run([&] { ok = echo_clients(pairs, 4, &peak); });
  EXPECT_EQ(peak, pairs);
  EXPECT_EQ(ok, pairs);
}

// With the netpoller's spreading capped (as sysmon caps it while the threads wait for a CPU,
// cpuwait.cpp), every readied goroutine still runs: the batches that do not go to idle Ps wait
// on the polling P's ring, and a list readied without a P still gets an M. The cap is set by
// hand and held (Config::contention_cap off: sysmon never moves it).
TEST(Net, EchoWithTheSpreadingCappedLosesNoWakeup) {
  raise_nofile();
  long pairs = mpg::testing::max_live(mpg::testing::scaled(2'000));
  for (auto [procs, cap] : {std::pair{2, 1}, std::pair{4, 2}}) {
    long ok = 0;
    mpg::run(
        [&, cap = cap] {
          mpg::detail::sched->spread_cap.store(cap);
          ok = echo_clients(pairs, 8, nullptr);
          EXPECT_EQ(mpg::stats().spread_cap, cap);
        },
        mpg::Config{.procs = procs, .contention_cap = false});
    EXPECT_EQ(ok, pairs) << procs << " Ps, cap " << cap;
  }
}

TEST(Net, ReadDeadlineFiresOnTimeAndCanBeMoved) {
  mpg::run([] {
    auto [c, s] = connected_pair();
    char b[16];
    for (int i = 0; i < 3; i++) {
      auto t0 = Clock::now();
      c.set_read_deadline(in(50ms));
      auto r = c.read(b, sizeof b);
      auto took = Clock::now() - t0;
      EXPECT_EQ(r.err.code, Errc::Timeout);
      EXPECT_GE(took, 50ms);
      EXPECT_LT(took, mpg::testing::under_sanitizer() ? 150ms : 60ms);
    }
    // Expired deadlines fail at once until moved; then reads work again.
    EXPECT_EQ(c.read(b, 1).err.code, Errc::Timeout);
    c.set_read_deadline(Clock::time_point{});
    s.write("hello", 5);
    auto r = c.read_full(b, 5);
    EXPECT_FALSE(r.err);
    EXPECT_EQ(std::string(b, 5), "hello");
    // Moving a deadline later while a reader waits: it times out at the new time.
    c.set_read_deadline(in(30ms));
    mpg::WaitGroup mover;
    mover.add(1);
    mpg::go([&mover, c = c]() mutable {
      {
        Conn mine = std::move(c);  // released before the report
        mpg::sleep_for(10ms);
        mine.set_read_deadline(in(120ms));
      }
      mover.done();
    });
    auto t0 = Clock::now();
    EXPECT_EQ(c.read(b, 1).err.code, Errc::Timeout);
    EXPECT_GE(Clock::now() - t0, 120ms);
    c.close();
    s.close();
    mover.wait();
  });
}

// PollDescs are pooled with their deadline timers (made by a descriptor's first deadline, kept
// through the pool): a deadline armed when its Conn closed must never time out the next user of
// the descriptor, and a reused descriptor's deadlines must still fire.
TEST(Net, DeadlineOfAClosedConnNeverReachesTheNextUserOfItsDescriptor) {
  mpg::run([] {
    constexpr int kPairs = 20;
    for (int i = 0; i < kPairs; i++) {
      auto [c, s] = connected_pair();
      c.set_read_deadline(in(20ms));  // armed, then closed before it fires
      s.set_write_deadline(in(20ms));
      c.close();
      s.close();
    }
    std::vector<std::pair<Conn, Conn>> pairs;  // the pool hands those descriptors out again
    for (int i = 0; i < kPairs; i++) pairs.push_back(connected_pair());
    mpg::sleep_for(40ms);  // past every old deadline
    char b[1];
    for (auto& [c, s] : pairs) {
      ASSERT_FALSE(s.write("x", 1).err);
      auto r = c.read(b, 1);
      EXPECT_FALSE(r.err) << r.err.message();
      EXPECT_EQ(r.n, 1u);
    }
    for (auto& [c, s] : pairs) c.set_read_deadline(in(20ms));
    for (auto& [c, s] : pairs) EXPECT_EQ(c.read(b, 1).err.code, Errc::Timeout);
    for (auto& [c, s] : pairs) {
      c.close();
      s.close();
    }
  });
}

TEST(Net, WriteDeadlineStopsABlockedWriterWithPartialCount) {
  mpg::run([] {
    auto [c, s] = connected_pair();
    c.set_write_buffer(16 * 1024);
    s.set_read_buffer(16 * 1024);
    std::vector<char> big(8 << 20, 'x');
    c.set_write_deadline(in(50ms));
    auto r = c.write(big.data(), big.size());  // nobody reads: the buffers fill
    EXPECT_EQ(r.err.code, Errc::Timeout);
    EXPECT_GT(r.n, 0u);
    EXPECT_LT(r.n, big.size());
    c.close();
    s.close();
  });
}

TEST(Net, CloseWakesBlockedReaderAndWriterAndAccept) {
  mpg::run([] {
    auto [c, s] = connected_pair();
    mpg::Chan<Errc> got(3);
    // Each goroutine lets go of what it holds before it reports: main may end the run as soon
    // as it has the report, and goroutines still alive then are abandoned, their stacks and
    // closures not unwound (LeakSanitizer then reports what they held; seen in CI).
    mpg::go([&, c = c]() mutable {
      char b[8];
      Errc code = c.read(b, sizeof b).err.code;
      c = Conn{};
      got.send(code);
    });
    auto [ln, addr] = listen_local();
    mpg::go([&, ln = ln]() mutable {
      Errc code = ln.accept().second.code;
      ln = Listener{};
      got.send(code);
    });
    ASSERT_TRUE(mpg::testing::wait_waiting(2));
    mpg::sleep_for(5ms);
    c.close();
    ln.close();
    EXPECT_EQ(*got.recv(), Errc::Closed);
    EXPECT_EQ(*got.recv(), Errc::Closed);
    EXPECT_EQ(c.close().code, Errc::Closed);  // a second close says so
    char b[1];
    EXPECT_EQ(c.read(b, 1).err.code, Errc::Closed);
    // A writer blocked on a full socket wakes too.
    auto [c2, s2] = connected_pair();
    c2.set_write_buffer(16 * 1024);
    mpg::go([&, c2 = c2]() mutable {
      Errc code;
      {
        std::vector<char> big(8 << 20, 'y');
        code = c2.write(big.data(), big.size()).err.code;
      }
      c2 = Conn{};
      got.send(code);
    });
    ASSERT_TRUE(mpg::testing::wait_waiting(1));
    mpg::sleep_for(5ms);
    c2.close();
    EXPECT_EQ(*got.recv(), Errc::Closed);
    s.close();
    s2.close();
  });
}

TEST(Net, HalfCloseReadsToEofThenAnswers) {
  mpg::run([] {
    auto [c, s] = connected_pair();
    mpg::WaitGroup served;  // released, then reported (see CloseWakesBlockedReaderAndWriterAndAccept)
    served.add(1);
    mpg::go([&served, s = s]() mutable {
      {
        Conn mine = std::move(s);
        auto [all, err] = read_to_error(mine, 100);
        EXPECT_EQ(err.code, Errc::Eof);
        mine.write("got " + std::to_string(all.size()));
        mine.close();
      }
      served.done();
    });
    std::string msg(1000, 'q');
    ASSERT_FALSE(c.write(msg).err);
    ASSERT_FALSE(c.close_write());
    auto [reply, err] = read_to_error(c, 32);
    EXPECT_EQ(err.code, Errc::Eof);
    EXPECT_EQ(reply, "got 1000");
    c.close();
    served.wait();
  });
}

// Data and the FIN arrive together and one event reports both: after the reads that drain the
// data, the next read must see EOF at once (the read hint must not wait for an event that
// already came). One P makes the order deterministic.
TEST(Net, HintNeverHidesAQueuedFin) {
  mpg::Config cfg;
  cfg.procs = 1;
  mpg::run([] {
    auto [c, s] = connected_pair();
    mpg::Chan<std::string> result(1);
    mpg::go([&, s = s]() mutable {
      std::string out;
      {
        Conn mine = std::move(s);  // released before the report
        mine.set_read_deadline(in(3s));  // a lost wake-up fails as a timeout, not a hang
        auto [all, err] = read_to_error(mine, 100);
        out = err.code == Errc::Eof ? all : "error: " + err.message();
      }
      result.send(std::move(out));
    });
    ASSERT_TRUE(mpg::testing::wait_waiting(1));  // the reader is parked in the netpoller
    std::string msg(150, 'f');
    ASSERT_FALSE(c.write(msg).err);  // no switch in between: data and FIN queue together
    ASSERT_FALSE(c.close_write());
    EXPECT_EQ(*result.recv(), msg);
    c.close();
    s.close();
  }, cfg);
}

// read_past_a_short_stop: `s` reads "hello" (a short read: the read hint arms), then whatever
// `queue` writes from the other end while it waits, until it has `want` bytes or a read fails.
// `queue` puts data behind a point where a read stops short. With one P nothing polls while
// `queue` runs, so one poll collects all of it, and a reader that takes the short read for an
// empty socket waits for an edge that never comes (and fails here on its deadline).
std::string read_past_a_short_stop(Conn& c, Conn s, std::size_t want, const std::function<void()>& queue) {
  mpg::Chan<std::string> result(1);
  std::atomic<bool> first{false};  // "hello" is read: the next read is the hinted one
  mpg::go([&, s = std::move(s)]() mutable {
    std::string got;
    {
      Conn mine = std::move(s);  // released before the report
      mine.set_read_deadline(in(3s));
      char b[100];
      while (got.size() < want) {
        auto r = mine.read(b, sizeof b);
        got.append(b, r.n);
        first.store(true);
        if (r.err) {
          got += " / error: " + r.err.message();
          break;
        }
      }
    }
    result.send(std::move(got));
  });
  EXPECT_FALSE(c.write(std::string("hello")).err);
  for (int i = 0; i < 5000 && !first.load(); i++) mpg::sleep_for(1ms);
  EXPECT_TRUE(first.load());
  EXPECT_TRUE(mpg::testing::wait_waiting(1));  // "hello" read, the reader waits for the next edge
  queue();
  return *result.recv();
}

TEST(Net, HintNeverHidesDataBehindAnUrgentMark) {
  mpg::Config cfg;
  cfg.procs = 1;
  mpg::run([] {
    auto [c, s] = connected_pair();
    std::string got = read_past_a_short_stop(c, std::move(s), 11, [fd = c.fd()] {
      // "abc" and the urgent byte go out at once (urgent mode overrides the cork), "def" right
      // behind; a read stops at the urgent byte with "def" queued.
      int on = 1, off = 0;
      ASSERT_EQ(::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on), 0);
      ASSERT_EQ(::send(fd, "abc", 3, 0), 3);
      ASSERT_EQ(::send(fd, "X", 1, MSG_OOB), 1);
      ASSERT_EQ(::send(fd, "def", 3, 0), 3);
      ASSERT_EQ(::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off), 0);
    });
    EXPECT_EQ(got, "helloabcdef");  // the urgent byte is out of band: not in the stream
    c.close();
  }, cfg);
}

TEST(Net, HintNeverHidesDataBehindPassedDescriptors) {
  mpg::Config cfg;
  cfg.procs = 1;
  mpg::run([] {
    std::string where = "@mpg_net_hint_" + std::to_string(::getpid());
    auto [ln, err] = listen("unix", where);
    ASSERT_FALSE(err) << err.message();
    auto [c, derr] = dial("unix", where);
    ASSERT_FALSE(derr) << derr.message();
    auto [s, aerr] = ln.accept();
    ASSERT_FALSE(aerr) << aerr.message();
    ln.close();
    std::string got = read_past_a_short_stop(c, std::move(s), 11, [fd = c.fd()] {
      // "abc" carries a descriptor: a Unix stream read stops after it, with "def" queued behind.
      char data[] = "abc";
      iovec io{data, 3};
      alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
      msghdr m{};
      m.msg_iov = &io;
      m.msg_iovlen = 1;
      m.msg_control = ctl;
      m.msg_controllen = sizeof ctl;
      cmsghdr* cm = CMSG_FIRSTHDR(&m);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int));
      int passed = fd;  // any open descriptor: the socket's own
      std::memcpy(CMSG_DATA(cm), &passed, sizeof passed);
      ASSERT_EQ(::sendmsg(fd, &m, 0), 3);
      ASSERT_EQ(::send(fd, "def", 3, 0), 3);
    });
    EXPECT_EQ(got, "helloabcdef");
    c.close();
  }, cfg);
}

TEST(Net, PeerResetMidWrite) {
  mpg::run([] {
    auto [c, s] = connected_pair();
    mpg::WaitGroup peer;
    peer.add(1);
    mpg::go([&peer, s = s]() mutable {
      {
        Conn mine = std::move(s);
        char b[4096];
        mine.read_full(b, sizeof b);  // some data arrives, then the peer resets
        mine.set_linger(0);
        mine.close();
      }
      peer.done();
    });
    std::vector<char> big(1 << 20, 'z');
    Error err;
    auto t0 = Clock::now();
    for (int i = 0; i < 1000 && !err; i++) err = c.write(big.data(), big.size()).err;
    EXPECT_EQ(err.code, Errc::Reset) << err.message();
    EXPECT_LT(Clock::now() - t0, 5s);
    c.close();
    peer.wait();
  });
}

TEST(Net, Ipv6AndUnixSockets) {
  mpg::run([] {
    // IPv6 loopback, when this machine has it.
    int probe = ::socket(AF_INET6, SOCK_STREAM, 0);
    bool v6 = false;
    if (probe >= 0) {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_loopback;
      v6 = ::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(probe);
    }
    if (v6) {
      auto [ln, err] = listen("tcp6", "[::1]:0");
      ASSERT_FALSE(err) << err.message();
      EXPECT_EQ(ln.addr().to_string(), "[::1]:" + std::to_string(ln.addr().port()));
      EchoServer server(ln);
      auto [c, derr] = dial("tcp", "[::1]:" + std::to_string(ln.addr().port()));
      ASSERT_FALSE(derr) << derr.message();
      EXPECT_EQ(c.remote_addr().family(), AF_INET6);
      EXPECT_TRUE(check_echo(c, 7, 20));
      c.close();
      server.stop();
    }
    // A Unix socket file, removed when the listener closes, and the abstract namespace.
    std::string path = "/tmp/mpg_net_test_" + std::to_string(::getpid()) + ".sock";
    for (const std::string& where : {path, "@mpg_net_test_" + std::to_string(::getpid())}) {
      auto [ln, err] = listen("unix", where);
      ASSERT_FALSE(err) << where << ": " << err.message();
      EXPECT_EQ(ln.addr().to_string(), where);
      EchoServer server(ln);
      auto [c, derr] = dial("unix", where);
      ASSERT_FALSE(derr) << derr.message();
      EXPECT_TRUE(check_echo(c, 9, 20));
      c.close();
      server.stop();
    }
    EXPECT_NE(::access(path.c_str(), F_OK), 0);
  });
}

TEST(Net, DialErrors) {
  mpg::run([] {
    auto [ln, addr] = listen_local();
    ln.close();
    auto [c, err] = dial("tcp", addr);  // nobody listens there any more
    EXPECT_EQ(err.code, Errc::Refused) << err.message();
    EXPECT_EQ(dial("tcp", "127.0.0.1").second.code, Errc::BadAddress);
    EXPECT_EQ(dial("tcp", "::1:80").second.code, Errc::BadAddress);
    EXPECT_EQ(dial("udp", "127.0.0.1:80").second.code, Errc::BadAddress);
    auto [l2, e2] = listen("tcp4", "127.0.0.1:0");
    auto [l3, e3] = listen("tcp4", "127.0.0.1:" + std::to_string(l2.addr().port()));
    EXPECT_EQ(e3.code, Errc::AddrInUse);
    // A full backlog nobody accepts from: the kernel drops the SYNs and dial times out.
    auto [l4, e4] = listen("tcp4", "127.0.0.1:0", ListenOptions{.backlog = 1});
    std::string a4 = "127.0.0.1:" + std::to_string(l4.addr().port());
    std::vector<Conn> held;
    Error last;
    for (int i = 0; i < 64 && !last; i++) {
      auto [ci, ei] = dial("tcp", a4, 200ms);
      if (ei) last = ei;
      else held.push_back(ci);
    }
    EXPECT_EQ(last.code, Errc::Timeout) << last.message();
    for (auto& h : held) h.close();
    l2.close();
    l4.close();
  });
}

TEST(Net, ConcurrentReadersAreSerialized) {
  mpg::run([] {
    auto [c, s] = connected_pair();
    constexpr int kReaders = 8, kEach = 100;
    std::atomic<int> got{0};
    mpg::WaitGroup wg;
    wg.add(kReaders);
    for (int i = 0; i < kReaders; i++)
      mpg::go([&, c = c]() mutable {
        {
          Conn mine = std::move(c);  // released before the report
          char b;
          for (int k = 0; k < kEach; k++)
            if (!mine.read_full(&b, 1).err) got++;
        }
        wg.done();
      });
    std::string all(kReaders * kEach, 'r');
    for (char& ch : all) {
      s.write(&ch, 1);
      if ((&ch - all.data()) % 64 == 0) mpg::yield();
    }
    wg.wait();
    EXPECT_EQ(got.load(), kReaders * kEach);
    c.close();
    s.close();
  });
}

// A batch that epoll returned for a descriptor that is then closed, and whose number and
// PollDesc are reused at once, must not wake the new registration.
TEST(Net, StaleEventNeverReachesTheNextUserOfTheFd) {
  mpg::run([] {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    int err = 0;
    mpg::detail::PollDesc* pd1 = mpg::detail::netpoll_open(sv[0], &err);
    ASSERT_NE(pd1, nullptr);
    ASSERT_EQ(::write(sv[1], "x", 1), 1);  // sv[0] readable: an event is queued in epoll
    static int fd_no;
    static mpg::detail::PollDesc* pd2;
    static int new_peer;
    fd_no = sv[0];
    mpg::detail::netpoll_test_hook = [] {
      // Between epoll_wait and the dispatch: close the fd and reuse its number and PollDesc.
      mpg::detail::PollDesc* old = mpg::detail::netpoll_test_hook_arg;
      mpg::detail::netpoll_evict(old);
      mpg::detail::netpoll_close(old);
      ::close(fd_no);
      int nv[2];
      ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, nv);
      if (nv[0] != fd_no) {
        ::dup2(nv[0], fd_no);
        ::close(nv[0]);
      }
      new_peer = nv[1];
      int e = 0;
      pd2 = mpg::detail::netpoll_open(fd_no, &e);
    };
    mpg::detail::netpoll_test_hook_arg = pd1;
    int n = 0;
    mpg::detail::netpoll(0, &n);
    mpg::detail::netpoll_test_hook = nullptr;
    ASSERT_NE(pd2, nullptr);
    EXPECT_EQ(pd2, pd1);  // the pool handed the same PollDesc out again: the hard case
    EXPECT_EQ(pd2->rg.load(), mpg::detail::PollDesc::kNil) << "the old fd's event reached the new one";
    mpg::detail::netpoll_evict(pd2);
    mpg::detail::netpoll_close(pd2);
    ::close(fd_no);
    ::close(new_peer);
    ::close(sv[1]);
  });
}

// Rapid churn: connections opened and closed while others carry data; descriptors are reused
// constantly and every connection still sees exactly its own bytes.
TEST(Net, ChurnWithFdReuseKeepsStreamsApart) {
  long workers = 50, rounds = scaled(200);
  std::atomic<long> ok{0};
  mpg::run([&] {
    auto [ln, addr] = listen_local();
    EchoServer server(ln);
    mpg::WaitGroup wg;
    wg.add(int(workers));
    for (long w = 0; w < workers; w++)
      mpg::go([&, w, addr = addr] {
        for (long r = 0; r < rounds; r++) {
          auto [c, err] = dial("tcp", addr);
          if (err) continue;
          if (check_echo(c, std::uint64_t(w * 100000 + r), 2)) ok++;
          c.close();
        }
        wg.done();
      });
    wg.wait();
    server.stop();
  });
  EXPECT_EQ(ok.load(), workers * rounds);
}

// Timers keep their time while an M sleeps in epoll_wait, including a timer that is earlier
// than the one the poller sleeps for (it must break the sleep).
TEST(Net, TimersStayOnTimeBesideBlockedPoller) {
  mpg::Config cfg;
  cfg.procs = 2;
  mpg::run([] {
    auto [c, s] = connected_pair();
    mpg::WaitGroup reader;
    reader.add(1);
    mpg::go([&, c = c]() mutable {
      {
        Conn mine = std::move(c);  // released before the report
        char b;
        mine.read(&b, 1);  // parked in the netpoller until the end
      }
      reader.done();
    });
    ASSERT_TRUE(mpg::testing::wait_waiting(1));
    std::vector<std::chrono::nanoseconds> late;
    for (int i = 0; i < 20; i++) {
      auto t0 = Clock::now();
      mpg::sleep_for(std::chrono::milliseconds(2 + i % 5));
      late.push_back(Clock::now() - t0 - std::chrono::milliseconds(2 + i % 5));
    }
    std::sort(late.begin(), late.end());
    EXPECT_LT(late[late.size() / 2], mpg::testing::under_sanitizer() ? 5ms : 1ms);
    s.close();
    c.close();
    reader.wait();
  }, cfg);
}

// Out of descriptors: accept backs off (no spin), logs at most once a second, and takes the
// queued connections once descriptors are free again. The server runs in a child with a low
// RLIMIT_NOFILE; the parent connects with plain sockets.
TEST(Net, AcceptOutOfDescriptorsNeitherSpinsNorFloods) {
  // TSan does not support a child that starts threads after fork() in a process that had some.
  const char* scale = mpg::testing::test_scale();
  if (scale && std::string(scale) == "tsan") GTEST_SKIP() << "fork + threads under TSan";
  int port_pipe[2], err_pipe[2];
  ASSERT_EQ(::pipe(port_pipe), 0);
  ASSERT_EQ(::pipe(err_pipe), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::alarm(30);
    ::dup2(err_pipe[1], 2);
    ::close(err_pipe[0]);
    int code = mpg::run([&]() -> int {
      auto [ln, err] = listen("tcp4", "127.0.0.1:0");
      if (err) return 10;
      int port = ln.addr().port();
      std::vector<Conn> held;
      rlimit rl{};
      getrlimit(RLIMIT_NOFILE, &rl);
      rlimit low = rl;
      low.rlim_cur = 40;  // stdio, pipes, epoll, eventfd, the listener, ~30 connections
      setrlimit(RLIMIT_NOFILE, &low);
      if (::write(port_pipe[1], &port, sizeof port) != sizeof port) return 11;
      std::atomic<long> accepted{0};
      mpg::Chan<Conn> conns(1000);
      mpg::WaitGroup acceptor;
      acceptor.add(1);
      mpg::go([&, ln = ln]() mutable {
        for (;;) {
          auto [c, aerr] = ln.accept();
          if (aerr) break;
          accepted++;
          conns.send(c);
        }
        acceptor.done();
      });
      int verdict = [&]() -> int {
        // Hold every accepted connection until the process runs out of descriptors.
        auto until = Clock::now() + 5s;
        while (ln.accept_retries() == 0 && Clock::now() < until) {
          while (auto c = conns.try_recv()) held.push_back(*c);
          mpg::sleep_for(1ms);
        }
        if (ln.accept_retries() == 0) return 12;
        // 1.5 s out of descriptors: CPU and retries stay small.
        rusage r0{}, r1{};
        getrusage(RUSAGE_SELF, &r0);
        std::uint64_t tries0 = ln.accept_retries();
        mpg::sleep_for(1500ms);
        getrusage(RUSAGE_SELF, &r1);
        std::uint64_t tries = ln.accept_retries() - tries0;
        double cpu = double(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
                     double(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
        if (tries > 40) return 13;        // backoff: 5, 10, ..., 250 ms
        if (cpu > 0.15) return 14;        // no spin
        // Free the descriptors: the queued connections get accepted.
        setrlimit(RLIMIT_NOFILE, &rl);
        long before = accepted.load();
        for (auto& c : held) c.close();
        held.clear();
        until = Clock::now() + 5s;
        while (accepted.load() < before + 20 && Clock::now() < until) {
          while (auto c = conns.try_recv()) c->close();
          mpg::sleep_for(1ms);
        }
        if (accepted.load() < before + 20) return 15;
        return 0;
      }();
      setrlimit(RLIMIT_NOFILE, &rl);
      ln.close();
      acceptor.wait();
      while (auto c = conns.try_recv()) c->close();
      return verdict;
    });
    ::_exit(code);
  }
  ::close(port_pipe[1]);
  ::close(err_pipe[1]);
  int port = 0;
  ASSERT_EQ(::read(port_pipe[0], &port, sizeof port), ssize_t(sizeof port));
  std::vector<int> clients;
  for (int i = 0; i < 100; i++) {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(std::uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) clients.push_back(s);
    else ::close(s);
  }
  std::string log;
  char buf[4096];
  ssize_t k;
  while ((k = ::read(err_pipe[0], buf, sizeof buf)) > 0) log.append(buf, std::size_t(k));
  int status = 0;
  ::waitpid(pid, &status, 0);
  for (int s : clients) ::close(s);
  ::close(port_pipe[0]);
  ::close(err_pipe[0]);
  ASSERT_TRUE(WIFEXITED(status)) << log;
  EXPECT_EQ(WEXITSTATUS(status), 0) << log;
  std::size_t lines = 0;
  for (std::size_t p = 0; (p = log.find("mpg net: accept:", p)) != std::string::npos; p++) lines++;
  EXPECT_GE(lines, 1u) << log;
  EXPECT_LE(lines, 5u) << log;  // ~2 s out of descriptors: at most one line a second
}

// An open socket nobody waits on is no reason to wait forever: with every goroutine blocked on
// a channel, Go's deadlock message still comes (the netpoller counts goroutines parked on
// sockets, not registered sockets; a change that counted registrations hung here instead).
TEST(NetDeathTest, DeadlockIsReportedWithAnIdleListenerOpen) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(mpg::run([] {
                ::alarm(20);  // a hang fails the test (SIGALRM) instead of stalling the suite
                auto [ln, err] = listen("tcp", "127.0.0.1:0");
                if (err) std::_Exit(3);
                mpg::Chan<int> never;
                never.recv();
              }),
              ::testing::ExitedWithCode(2), "all goroutines are asleep - deadlock!");
}

// The last goroutine parked on a socket is woken by a close while another M sleeps in epoll with
// no timer pending; then every goroutine blocks on a channel. The sleeping poller must not keep
// the deadlock message from coming (it did: the run hung until the alarm).
TEST(NetDeathTest, DeadlockIsReportedAfterTheLastSocketWaiterIsWokenByAClose) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  mpg::Config cfg;
  cfg.procs = 2;
  EXPECT_EXIT(mpg::run([] {
                ::alarm(20);  // a hang fails the test (SIGALRM) instead of stalling the suite
                // The peer is a plain socket the netpoller never sees, so the close below
                // raises no event that would wake the poller by chance.
                int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
                sockaddr_in sa{};
                sa.sin_family = AF_INET;
                sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                socklen_t len = sizeof sa;
                if (::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(lfd, 1) != 0 ||
                    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
                  std::_Exit(4);
                auto [c, derr] = dial("tcp", "127.0.0.1:" + std::to_string(ntohs(sa.sin_port)));
                if (derr) std::_Exit(5);
                int peer = ::accept(lfd, nullptr, nullptr);
                if (peer < 0) std::_Exit(6);
                mpg::Chan<int> woke(1);
                mpg::go([&, c = c]() mutable {
                  char b;
                  c.read(&b, 1);  // parked in the netpoller until the close below
                  woke.send(1);
                  mpg::Chan<int> never;
                  never.recv();
                });
                if (!mpg::testing::wait_waiting(1)) std::_Exit(3);
                // The closer runs without sleeping (no timer) until the idle M sleeps in
                // epoll_wait with no timeout, then closes the reader's socket.
                mpg::go([c = c]() mutable {
                  auto until = Clock::now() + 5s;
                  while (!(mpg::detail::sched->poll_in_epoll.load() &&
                           mpg::detail::sched->poll_until.load() == INT64_MAX) &&
                         Clock::now() < until) {
                  }
                  if (Clock::now() >= until) std::_Exit(7);  // the scene never came
                  c.close();
                });
                woke.recv();
                mpg::Chan<int> never;
                never.recv();
              }, cfg),
              ::testing::ExitedWithCode(2), "all goroutines are asleep - deadlock!");
}

}  // namespace
}  // namespace mpg::net
