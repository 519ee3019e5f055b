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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "floor_common.hpp"
#include "poll/sys.hpp"

namespace {

using namespace floor_peer;

struct Conn {
  std::uint8_t matched = 0;  // bytes of "\r\n\r\n" the last read ended with (0..3)
  std::uint64_t owed = 0;    // response bytes a short write left to send
};

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

}  // namespace

int main(int argc, char** argv) {
  return floor_main(argc, argv, "floor_httpd", "the floor HTTP server: one thread, epoll, one read and one write per batch",
                    true, [](int lfd) {
                      Server(lfd).run();
                      return 0;
                    });
}
