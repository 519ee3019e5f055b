// test_net.hpp: blocking loopback client sockets for the reactor tests (every call bounded by a
// timeout, so a broken server fails a test instead of hanging it).
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>

#include "mpg/poll/unique_fd.hpp"

namespace mpg::reactor::testnet {

// connect_to: a blocking client socket to host:port with 5 s send/receive timeouts, or empty.
// rcvbuf > 0 fixes the receive buffer (and turns off its autotuning, which may grow it to
// tcp_rmem's maximum, 32 MiB on some machines).
inline poll::UniqueFd connect_to(std::uint16_t port, const char* host = "127.0.0.1", int rcvbuf = 0) {
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  if (::inet_pton(AF_INET, host, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = family = AF_INET;
    a->sin_port = htons(port);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_pton(AF_INET6, host, &a->sin6_addr);
    a->sin6_family = family = AF_INET6;
    a->sin6_port = htons(port);
    len = sizeof *a;
  }
  poll::UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (rcvbuf > 0) ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return {};
  return fd;
}

// write_all: true if every byte was written before the timeout.
inline bool write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// read_exact: reads n bytes, or fewer on EOF/timeout.
inline std::string read_exact(int fd, std::size_t n) {
  std::string out(n, '\0');
  std::size_t off = 0;
  while (off < n) {
    ssize_t k = ::recv(fd, out.data() + off, n - off, 0);
    if (k <= 0) break;
    off += static_cast<std::size_t>(k);
  }
  out.resize(off);
  return out;
}

// wait_eof: true if the peer closes (EOF or reset) within `limit`; data is discarded.
inline bool wait_eof(int fd, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  char buf[4096];
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    ssize_t k = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
  }
  return false;
}

}  // namespace mpg::reactor::testnet
