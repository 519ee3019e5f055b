// idle_client: holds N idle keep-alive HTTP connections to a server, for the idle-connection
// memory figures of mpg's HTTP showdown (bench/http/http_load.py).
//
//   idle_client --port P [--host 127.0.0.1] [--conns 1000] [--hold 2] [--batch 250]
//               [--timeout 20] [--path /plaintext]
//
// Opens the connections in batches of --batch: connects each, sends one
// "GET <path> HTTP/1.1" on each, and waits until every one of the batch has read a complete
// response (head and Content-Length body), so the server has really accepted and served every
// connection before the next batch, and its listen backlog never overflows. Then it prints
//   {"event":"held","opened":k}
// (flushed) so the driver can read the server's RSS while the connections are held, holds them
// idle for --hold seconds (watching for the server closing any), closes them all and prints
//   {"conns":N,"opened":k,"served":s,"closed_by_server":c,"open_s":...,"held_s":...}
// The whole run is bounded by --timeout (opening) plus --hold. Exit status 0 if every
// connection was opened and served, 1 otherwise (the JSON is printed either way).
//
// Each connection is one file descriptor: keep --conns under this process's RLIMIT_NOFILE
// (the soft limit is raised to the hard one here; on this machine the cap is 20,000).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Conn {
  int fd = -1;
  std::string in;  // the response so far (freed once it is complete)
  bool served = false;
};

// response_complete: whether `in` holds a whole response: the head, then Content-Length bytes.
bool response_complete(std::string_view in) {
  std::size_t end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) return false;
  std::string head(in.substr(0, end));
  std::transform(head.begin(), head.end(), head.begin(), [](unsigned char ch) { return std::tolower(ch); });
  std::size_t at = head.find("\r\ncontent-length:");
  std::size_t length = at == std::string::npos ? 0 : std::strtoull(head.c_str() + at + 17, nullptr, 10);
  return in.size() >= end + 4 + length;
}

int connect_to(const sockaddr_in& a) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", path = "/plaintext";
  int port = 0, conns = 1000, batch = 250;
  double hold = 2, timeout = 20;
  CLI::App app{"hold idle keep-alive HTTP connections, each served one request first"};
  app.add_option("--host", host, "IPv4 address of the server");
  app.add_option("--port", port)->required();
  app.add_option("--conns", conns, "connections to open")->check(CLI::Range(1, 1000000));
  app.add_option("--hold", hold, "seconds to hold them idle")->check(CLI::Range(0.0, 600.0));
  app.add_option("--batch", batch, "connections opened and served before the next ones")->check(CLI::Range(1, 100000));
  app.add_option("--timeout", timeout, "seconds allowed for opening and serving them all")->check(CLI::Range(0.1, 600.0));
  app.add_option("--path", path, "the request's target");
  CLI11_PARSE(app, argc, argv);
  raise_fd_limit();

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    std::fprintf(stderr, "idle_client: not an IPv4 address: %s\n", host.c_str());
    return 1;
  }
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout));
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<Conn> cs;
  cs.reserve(static_cast<std::size_t>(conns));
  std::vector<epoll_event> evs(1024);
  std::vector<char> buf(4096);
  int opened = 0, served = 0;
  std::string failure;

  // Open and serve one batch at a time: connect and send on each, then read every response.
  while (opened < conns && failure.empty()) {
    const int first = opened;
    const int last = std::min(conns, first + batch);
    for (int i = first; i < last; i++) {
      int fd = connect_to(addr);
      if (fd < 0) {
        failure = std::string("connect: ") + std::strerror(errno);
        break;
      }
      cs.push_back(Conn{fd, {}, false});
      opened++;
      if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
        failure = std::string("send: ") + std::strerror(errno);
        break;
      }
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<std::uint32_t>(i);
      ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    while (served < opened && failure.empty()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) {
        failure = "timed out waiting for responses";
        break;
      }
      int n = ::epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), static_cast<int>(left));
      for (int k = 0; k < n; k++) {
        Conn& c = cs[evs[static_cast<std::size_t>(k)].data.u32];
        ssize_t r = ::recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (r <= 0) {
          if (r < 0 && errno == EAGAIN) continue;
          failure = "the server closed a connection before answering";
          break;
        }
        c.in.append(buf.data(), static_cast<std::size_t>(r));
        if (!c.served && response_complete(c.in)) {
          c.served = true;
          served++;
          std::string().swap(c.in);
        }
      }
    }
  }
  const double open_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!failure.empty()) std::fprintf(stderr, "idle_client: %s (%d opened, %d served)\n", failure.c_str(), opened, served);
  std::printf("{\"event\":\"held\",\"opened\":%d}\n", opened);
  std::fflush(stdout);

  // Hold: nothing should arrive; a readable connection now means the server closed it.
  int closed_by_server = 0;
  const auto t_hold = Clock::now();
  const auto hold_end = t_hold + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(hold));
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(hold_end - Clock::now()).count();
    if (left <= 0) break;
    int n = ::epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), static_cast<int>(left));
    for (int k = 0; k < n; k++) {
      Conn& c = cs[evs[static_cast<std::size_t>(k)].data.u32];
      ssize_t r = ::recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (r > 0) continue;  // unexpected bytes; the connection is still open
      if (r < 0 && errno == EAGAIN) continue;
      ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
      closed_by_server++;
    }
  }
  const double held_s = std::chrono::duration<double>(Clock::now() - t_hold).count();
  for (auto& c : cs) ::close(c.fd);
  ::close(ep);
  std::printf("{\"conns\":%d,\"opened\":%d,\"served\":%d,\"closed_by_server\":%d,\"open_s\":%.3f,\"held_s\":%.3f}\n",
              conns, opened, served, closed_by_server, open_s, held_s);
  return (failure.empty() && served == conns && closed_by_server == 0) ? 0 : 1;
}
