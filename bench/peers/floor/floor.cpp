// floor_httpd: the "floor" of mpg's HTTP showdown (bench/http/http_load.py), the least work any
// HTTP server can do per request on this machine, so that every other server's figures can be
// read as a distance from it.
//
//   floor_httpd [--host 127.0.0.1] [--port 0]
//
// One thread, one level-triggered epoll set, a non-blocking listening socket drained on every
// readiness. Per readable connection: one read(), a count of the "\r\n\r\n" in what was read
// (no parsing: a request is whatever ends in an empty line; none has a body here), and one
// write() of that many copies of a fixed response. A short write is finished on EPOLLOUT
// before the connection is read again. The read and the send are made as mpg's servers make
// them, straight to the kernel (src/poll/sys.hpp), so the floor stays the least work. Prints
// "listening <port>" on stdout once it accepts; exits on SIGINT/SIGTERM.
//
// Every request is answered with these 128 bytes, byte for byte what mpg's HTTP core writes for
// GET /plaintext (src/http/writer.cpp); the Date is refreshed when the second changes, checked
// once per epoll_wait:
//
//   HTTP/1.1 200 OK\r\n
//   Server: mpg\r\n
//   Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n
//   Content-Type: text/plain\r\n
//   Content-Length: 13\r\n
//   \r\n
//   Hello, World!
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "mpg/http/date.hpp"
#include "poll/sys.hpp"

namespace {

constexpr std::string_view kHead = "HTTP/1.1 200 OK\r\nServer: mpg\r\nDate: ";
constexpr std::string_view kTail =
    "\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
constexpr std::size_t kResponseBytes = kHead.size() + mpg::http::kHttpDateLength + kTail.size();
static_assert(kResponseBytes == 128);
// kCopies: responses pre-built back to back, so one write answers up to 64 pipelined requests.
constexpr std::size_t kCopies = 64;
constexpr std::size_t kReadBytes = 64 * 1024;
constexpr std::string_view kEnd = "\r\n\r\n";

volatile sig_atomic_t g_stop = 0;

struct Conn {
  std::uint8_t matched = 0;  // bytes of "\r\n\r\n" the last read ended with (0..3)
  std::uint64_t owed = 0;    // response bytes a short write left to send
};

// Responses: kCopies copies of the response, the Date rewritten in each when the second changes.
class Responses {
 public:
  Responses() : bytes_(kResponseBytes * kCopies, '\0') {
    for (std::size_t i = 0; i < kCopies; i++) {
      char* r = bytes_.data() + i * kResponseBytes;
      std::memcpy(r, kHead.data(), kHead.size());
      std::memcpy(r + kHead.size() + mpg::http::kHttpDateLength, kTail.data(), kTail.size());
    }
    refresh();
  }
  void refresh() {
    std::string_view date = mpg::http::http_date();
    if (date == date_) return;
    date_.assign(date);
    for (std::size_t i = 0; i < kCopies; i++)
      std::memcpy(bytes_.data() + i * kResponseBytes + kHead.size(), date.data(), date.size());
  }
  // the next piece of a stream of responses with `owed` bytes left: where it starts and its size.
  std::string_view piece(std::uint64_t owed) const {
    std::size_t off = (kResponseBytes - owed % kResponseBytes) % kResponseBytes;
    std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(owed, bytes_.size() - off));
    return {bytes_.data() + off, len};
  }

 private:
  std::string bytes_;
  std::string date_;
};

// count_requests: how many "\r\n\r\n" end in p[0..n), one that began in the previous read
// included; `matched` carries the bytes of one the read ends with.
unsigned count_requests(const char* p, std::size_t n, std::uint8_t& matched) {
  unsigned count = 0;
  std::size_t i = 0;
  while (matched > 0 && i < n) {  // finish a terminator split between two reads
    if (p[i] == kEnd[matched]) {
      if (++matched == kEnd.size()) {
        count++;
        matched = 0;
      }
    } else {
      matched = p[i] == '\r' ? 1 : 0;
    }
    i++;
  }
  if (i == n) return count;
  while (const void* q = ::memmem(p + i, n - i, kEnd.data(), kEnd.size())) {
    count++;
    i = static_cast<std::size_t>(static_cast<const char*>(q) - p) + kEnd.size();
  }
  for (std::size_t k = kEnd.size() - 1; k > 0; k--) {
    if (n - i >= k && std::memcmp(p + n - k, kEnd.data(), k) == 0) {
      matched = static_cast<std::uint8_t>(k);
      break;
    }
  }
  return count;
}

int listen_on(const std::string& host, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) {
    std::fprintf(stderr, "floor_httpd: not an IPv4 address: %s\n", host.c_str());
    return -1;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    std::fprintf(stderr, "floor_httpd: %s:%d: %s\n", host.c_str(), port, std::strerror(errno));
    return -1;
  }
  return fd;
}

class Server {
 public:
  Server(int lfd) : lfd_(lfd), ep_(::epoll_create1(EPOLL_CLOEXEC)) { watch(lfd_, EPOLLIN, EPOLL_CTL_ADD); }

  void run() {
    std::vector<epoll_event> evs(1024);
    while (!g_stop) {
      int n = ::epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), -1);
      if (n < 0) continue;  // EINTR: a signal; g_stop says which
      responses_.refresh();
      for (int k = 0; k < n; k++) {
        const epoll_event& ev = evs[static_cast<std::size_t>(k)];
        if (ev.data.fd == lfd_) {
          accept_all();
        } else if (ev.events & EPOLLOUT) {
          flush(ev.data.fd);
        } else {
          serve(ev.data.fd);
        }
      }
    }
  }

 private:
  void watch(int fd, std::uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(ep_, op, fd, &ev);
  }

  void accept_all() {
    for (;;) {
      int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && !accept_error_told_) {
          std::fprintf(stderr, "floor_httpd: accept: %s\n", std::strerror(errno));
          accept_error_told_ = true;
        }
        return;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (static_cast<std::size_t>(fd) >= conns_.size()) conns_.resize(static_cast<std::size_t>(fd) * 2);
      conns_[static_cast<std::size_t>(fd)] = Conn{};
      watch(fd, EPOLLIN, EPOLL_CTL_ADD);
    }
  }

  // serve: one read, then one write answering every request that read completed.
  void serve(int fd) {
    ssize_t r = mpg::sys::read(fd, in_.data(), in_.size());
    if (r <= 0) {
      if (r == 0 || (errno != EAGAIN && errno != EINTR)) ::close(fd);
      return;
    }
    Conn& c = conns_[static_cast<std::size_t>(fd)];
    c.owed = std::uint64_t{count_requests(in_.data(), static_cast<std::size_t>(r), c.matched)} * kResponseBytes;
    if (c.owed > 0 && !write_owed(fd, c)) return;
    if (c.owed > 0) watch(fd, EPOLLOUT, EPOLL_CTL_MOD);  // read again once this is out
  }

  void flush(int fd) {
    Conn& c = conns_[static_cast<std::size_t>(fd)];
    if (write_owed(fd, c) && c.owed == 0) watch(fd, EPOLLIN, EPOLL_CTL_MOD);
  }

  // write_owed: writes what the kernel takes of c.owed (more than kCopies responses take
  // several writes); false if the connection was closed.
  bool write_owed(int fd, Conn& c) {
    while (c.owed > 0) {
      std::string_view piece = responses_.piece(c.owed);
      ssize_t w = mpg::sys::send(fd, piece.data(), piece.size(), MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN) return true;
        if (errno == EINTR) continue;
        ::close(fd);
        return false;
      }
      c.owed -= static_cast<std::uint64_t>(w);
      if (static_cast<std::size_t>(w) < piece.size()) return true;
    }
    return true;
  }

  int lfd_;
  int ep_;
  Responses responses_;
  std::vector<Conn> conns_ = std::vector<Conn>(1024);
  std::vector<char> in_ = std::vector<char>(kReadBytes);
  bool accept_error_told_ = false;
};

void on_signal(int) { g_stop = 1; }

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0;
  CLI::App app{"the floor HTTP server: one thread, epoll, one read and one write per batch"};
  app.add_option("--host", host, "IPv4 address to listen on");
  app.add_option("--port", port, "port (0: any; the chosen one is printed)");
  CLI11_PARSE(app, argc, argv);
  int lfd = listen_on(host, port);
  if (lfd < 0) return 1;
  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: epoll_wait returns EINTR
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  std::printf("listening %d\n", ntohs(a.sin_port));
  std::fflush(stdout);
  Server(lfd).run();
  return 0;
}
