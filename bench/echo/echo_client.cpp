// echo_client: the load generator of the TCP echo benchmark (bench/echo/echo_bench.py).
//
//   echo_client --port P [--host 127.0.0.1] [--mode pingpong|stream] [--conns 1000]
//               [--size 512] [--warmup 1] [--seconds 3] [--window 65536]
//
// One thread, its own epoll loop, level-triggered. pingpong: every connection sends one
// message, waits for its echo, sends the next; latency is send to full echo. stream: every
// connection keeps up to --window bytes in flight in message-sized pieces; latency is a
// message's send to the arrival of its last echoed byte. Counts only the measured window
// (after --warmup). Prints one JSON object. Exits 2 if the server stalls for kStallSeconds.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
// kStallSeconds: no echoed byte for this long means the server is broken; give up.
constexpr int kStallSeconds = 5;

struct Conn {
  int fd = -1;
  std::uint64_t sent = 0;      // bytes written
  std::uint64_t received = 0;  // bytes echoed back
  bool want_write = false;
  std::deque<std::pair<std::uint64_t, Clock::time_point>> pending;  // (end offset, send time)
};

int connect_one(const std::string& host, int port) {
  sockaddr_in6 a6{};
  sockaddr_in a4{};
  int family = AF_INET;
  sockaddr* sa;
  socklen_t len;
  if (::inet_pton(AF_INET, host.c_str(), &a4.sin_addr) == 1) {
    a4.sin_family = AF_INET;
    a4.sin_port = htons(static_cast<std::uint16_t>(port));
    sa = reinterpret_cast<sockaddr*>(&a4);
    len = sizeof a4;
  } else {
    family = AF_INET6;
    ::inet_pton(AF_INET6, host.c_str(), &a6.sin6_addr);
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(static_cast<std::uint16_t>(port));
    sa = reinterpret_cast<sockaddr*>(&a6);
    len = sizeof a6;
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, sa, len) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int fl = 1;
  ::ioctl(fd, FIONBIO, &fl);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", mode = "pingpong";
  int port = 0, conns = 1000;
  std::size_t size = 512, window = 65536;
  double warmup = 1, seconds = 3;
  CLI::App app{"echo benchmark client"};
  app.add_option("--host", host);
  app.add_option("--port", port)->required();
  app.add_option("--mode", mode)->check(CLI::IsMember({"pingpong", "stream"}));
  app.add_option("--conns", conns);
  app.add_option("--size", size);
  app.add_option("--warmup", warmup);
  app.add_option("--seconds", seconds);
  app.add_option("--window", window, "stream: bytes in flight per connection");
  CLI11_PARSE(app, argc, argv);
  const bool stream = mode == "stream";
  if (size == 0 || window < size) {
    std::fprintf(stderr, "echo_client: need 0 < size <= window\n");
    return 1;
  }
  const std::size_t out_chunk = stream ? window / size * size : size;
  std::string payload(out_chunk, 'e');
  std::vector<char> inbuf(256 * 1024);

  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<Conn> cs(static_cast<std::size_t>(conns));
  for (int i = 0; i < conns; i++) {
    int fd = connect_one(host, port);
    if (fd < 0) {
      std::fprintf(stderr, "echo_client: connect %d: %s\n", i, std::strerror(errno));
      return 1;
    }
    cs[static_cast<std::size_t>(i)].fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }

  auto t_start = Clock::now();
  auto t_measure = t_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
  auto t_end = t_measure + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  bool measuring = false;
  std::uint64_t messages = 0, messages_total = 0;
  std::vector<float> lat_us;
  lat_us.reserve(1 << 20);
  auto last_progress = Clock::now();

  // fill: writes what the mode allows on connection c.
  auto fill = [&](std::uint32_t i) {
    Conn& c = cs[i];
    for (;;) {
      std::uint64_t inflight = c.sent - c.received;
      std::uint64_t room = stream ? (window - inflight) / size * size : (inflight == 0 ? size : 0);
      // ping-pong: a partly written message is finished before anything else.
      std::uint64_t partial = c.sent % size;
      std::uint64_t want = partial ? size - partial : std::min<std::uint64_t>(room, out_chunk);
      if (want == 0) break;
      ssize_t n = ::send(c.fd, payload.data(), want, MSG_NOSIGNAL);
      if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          if (!c.want_write) {
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLOUT;
            ev.data.u32 = i;
            ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
            c.want_write = true;
          }
          return;
        }
        std::fprintf(stderr, "echo_client: send: %s\n", std::strerror(errno));
        std::exit(1);
      }
      auto now = Clock::now();
      std::uint64_t before = c.sent;
      c.sent += static_cast<std::uint64_t>(n);
      for (std::uint64_t end = (before / size + 1) * size; end <= c.sent; end += size) c.pending.emplace_back(end, now);
      if (!stream) break;
    }
    if (c.want_write) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = i;
      ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
      c.want_write = false;
    }
  };

  for (std::uint32_t i = 0; i < cs.size(); i++) fill(i);
  std::vector<epoll_event> evs(512);
  for (;;) {
    auto now = Clock::now();
    if (now >= t_end) break;
    if (!measuring && now >= t_measure) measuring = true;
    if (now - last_progress > std::chrono::seconds(kStallSeconds)) {
      std::fprintf(stderr, "echo_client: no progress for %d s\n", kStallSeconds);
      return 2;
    }
    int n = ::epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 100);
    for (int k = 0; k < n; k++) {
      std::uint32_t i = evs[static_cast<std::size_t>(k)].data.u32;
      Conn& c = cs[i];
      if (evs[static_cast<std::size_t>(k)].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ssize_t r = ::recv(c.fd, inbuf.data(), inbuf.size(), 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
          std::fprintf(stderr, "echo_client: connection %u closed by the server\n", i);
          return 1;
        }
        if (r > 0) {
          c.received += static_cast<std::uint64_t>(r);
          last_progress = Clock::now();
          auto t = last_progress;
          while (!c.pending.empty() && c.pending.front().first <= c.received) {
            messages_total++;
            if (measuring) {
              messages++;
              lat_us.push_back(std::chrono::duration<float, std::micro>(t - c.pending.front().second).count());
            }
            c.pending.pop_front();
          }
        }
      }
      fill(i);
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - t_measure).count();
  std::sort(lat_us.begin(), lat_us.end());
  auto pct = [&](double p) {
    if (lat_us.empty()) return 0.0;
    return static_cast<double>(lat_us[std::min(lat_us.size() - 1, static_cast<std::size_t>(p * static_cast<double>(lat_us.size())))]);
  };
  std::printf("{\"mode\":\"%s\",\"conns\":%d,\"size\":%zu,\"seconds\":%.3f,\"messages\":%llu,"
              "\"messages_total\":%llu,\"msgs_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
              mode.c_str(), conns, size, secs, static_cast<unsigned long long>(messages),
              static_cast<unsigned long long>(messages_total), static_cast<double>(messages) / secs,
              pct(0.50), pct(0.99));
  for (auto& c : cs) ::close(c.fd);
  ::close(ep);
  return 0;
}
