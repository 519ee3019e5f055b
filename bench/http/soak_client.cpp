// soak_client: holds N HTTP/1.1 keep-alive connections to a server for a bounded time, each
// sending POST /echo with a body unique to the request and checking the echo byte for byte;
// after each response it closes and reconnects with probability --disconnect (sometimes with a
// reset instead of a FIN), and waits a random think time so the load stays at about --rate
// requests per second in all. One thread, epoll. Prints one JSON line at the end.
//
//   soak_client --port P [--conns 10000] [--seconds 600] [--rate 20000] [--disconnect 0.01]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <queue>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Conn {
  int fd = -1;
  enum class St { Idle, Connecting, Sending, Reading } st = St::Idle;
  std::string out, in, want;
  std::size_t sent = 0;
  Clock::time_point started;
};

struct Totals {
  std::uint64_t requests = 0, ok = 0, bad = 0, errors = 0, reconnects = 0, resets = 0;
};

}  // namespace

int main(int argc, char** argv) {
  int port = 0, conns = 10000;
  double seconds = 600, rate = 20000, disconnect = 0.01;
  std::string host = "127.0.0.1";
  CLI::App app{"HTTP soak client: keep-alive echo requests checked byte for byte, random reconnects"};
  app.add_option("--host", host);
  app.add_option("--port", port)->required();
  app.add_option("--conns", conns)->check(CLI::Range(1, 19000));
  app.add_option("--seconds", seconds)->check(CLI::Range(0.1, 86400.0));
  app.add_option("--rate", rate, "requests per second in all (think time between requests)");
  app.add_option("--disconnect", disconnect, "probability of a reconnect after each response");
  CLI11_PARSE(app, argc, argv);

  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(std::uint16_t(port));
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Conn> cs(static_cast<std::size_t>(conns));
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> uni(0, 1);
  // Each connection asks once per conns/rate seconds on average (exponential think time).
  std::exponential_distribution<double> think(rate / conns);
  using Wake = std::pair<Clock::time_point, int>;
  std::priority_queue<Wake, std::vector<Wake>, std::greater<>> timers;
  Totals t;
  std::uint64_t seq = 0;
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));

  auto close_conn = [&](Conn& c, bool reset) {
    if (c.fd < 0) return;
    if (reset) {
      linger l{1, 0};
      setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      t.resets++;
    }
    close(c.fd);
    c.fd = -1;
    c.st = Conn::St::Idle;
    c.in.clear();
  };
  auto open_conn = [&](int i) {
    Conn& c = cs[std::size_t(i)];
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int r = connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    if (r != 0 && errno != EINPROGRESS) {
      t.errors++;
      close_conn(c, false);
      return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u32 = std::uint32_t(i);
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    c.st = Conn::St::Connecting;
    return true;
  };
  auto start_request = [&](int i) {
    Conn& c = cs[std::size_t(i)];
    if (c.fd < 0 && !open_conn(i)) {
      timers.push({Clock::now() + std::chrono::milliseconds(100), i});
      return;
    }
    std::string body = "soak-" + std::to_string(++seq) + "-" + std::to_string(rng() % 1000000);
    c.want = body;
    c.out = "POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    c.sent = 0;
    c.in.clear();
    c.st = Conn::St::Sending;
    t.requests++;
  };
  // pump: writes and reads what it can; true while the connection is healthy.
  auto pump = [&](int i) {
    Conn& c = cs[std::size_t(i)];
    if (c.st == Conn::St::Connecting) c.st = c.out.empty() ? Conn::St::Idle : Conn::St::Sending;
    while (c.st == Conn::St::Sending && c.sent < c.out.size()) {
      ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) c.sent += std::size_t(n);
      else if (n < 0 && errno == EAGAIN) return true;
      else return false;
    }
    if (c.st == Conn::St::Sending) c.st = Conn::St::Reading;
    if (c.st != Conn::St::Reading) return true;
    char buf[8192];
    for (;;) {
      ssize_t n = recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, std::size_t(n));
        continue;
      }
      if (n < 0 && errno == EAGAIN) break;
      return false;  // EOF or error in the middle of a response
    }
    auto he = c.in.find("\r\n\r\n");
    if (he == std::string::npos) return true;
    auto cl = c.in.find("Content-Length: ");
    if (cl == std::string::npos || cl > he) return false;
    std::size_t len = std::strtoul(c.in.c_str() + cl + 16, nullptr, 10);
    if (c.in.size() < he + 4 + len) return true;
    bool good = c.in.compare(0, 12, "HTTP/1.1 200") == 0 && c.in.compare(he + 4, len, c.want) == 0 &&
                c.in.size() == he + 4 + len;
    (good ? t.ok : t.bad)++;
    c.out.clear();
    c.st = Conn::St::Idle;
    double u = uni(rng);
    if (u < disconnect) {
      close_conn(c, u < disconnect / 4);  // a quarter of the reconnects reset
      t.reconnects++;
    }
    timers.push({Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(think(rng))), i});
    return true;
  };

  // Open everything, spread over the first second.
  for (int i = 0; i < conns; i++)
    timers.push({Clock::now() + std::chrono::microseconds(std::int64_t(1e6 * i / conns)), i});
  std::vector<epoll_event> evs(1024);
  while (Clock::now() < deadline) {
    auto now = Clock::now();
    while (!timers.empty() && timers.top().first <= now) {
      int i = timers.top().second;
      timers.pop();
      start_request(i);
      if (cs[std::size_t(i)].fd >= 0 && !pump(i)) {
        t.errors++;
        close_conn(cs[std::size_t(i)], false);
        timers.push({now + std::chrono::milliseconds(10), i});
      }
    }
    int wait_ms = 10;
    if (!timers.empty()) {
      auto d = std::chrono::duration_cast<std::chrono::milliseconds>(timers.top().first - now).count();
      wait_ms = int(std::max<std::int64_t>(0, std::min<std::int64_t>(d, 10)));
    }
    int n = epoll_wait(ep, evs.data(), int(evs.size()), wait_ms);
    for (int k = 0; k < n; k++) {
      int i = int(evs[std::size_t(k)].data.u32);
      Conn& c = cs[std::size_t(i)];
      if (c.fd < 0) continue;
      if (!pump(i)) {
        // A broken connection mid-request: count it, reconnect and go on.
        t.errors++;
        close_conn(c, false);
        timers.push({Clock::now() + std::chrono::milliseconds(10), i});
      }
    }
  }
  int open = 0;
  for (auto& c : cs) {
    if (c.fd >= 0) open++;
    close_conn(c, false);
  }
  std::printf(
      "{\"conns\":%d,\"seconds\":%.1f,\"requests\":%llu,\"ok\":%llu,\"bad\":%llu,\"errors\":%llu,"
      "\"reconnects\":%llu,\"resets\":%llu,\"open_at_end\":%d}\n",
      conns, seconds, (unsigned long long)t.requests, (unsigned long long)t.ok, (unsigned long long)t.bad,
      (unsigned long long)t.errors, (unsigned long long)t.reconnects, (unsigned long long)t.resets, open);
  return t.bad == 0 ? 0 : 1;
}
