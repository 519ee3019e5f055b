// floor_common.hpp: what the floor servers share (floor.cpp on epoll, floor_uring.cpp on
// io_uring): the fixed response, pre-built kCopies times with its Date kept current, the count
// of requests a read completed, and the listening socket.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "mpg/http/date.hpp"

namespace floor_peer {

constexpr std::string_view kHead = "HTTP/1.1 200 OK\r\nServer: mpg\r\nDate: ";
constexpr std::string_view kTail =
    "\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
constexpr std::size_t kResponseBytes = kHead.size() + mpg::http::kHttpDateLength + kTail.size();
static_assert(kResponseBytes == 128);
// kCopies: responses pre-built back to back, so one write answers up to 64 pipelined requests.
constexpr std::size_t kCopies = 64;
constexpr std::size_t kReadBytes = 64 * 1024;
constexpr std::string_view kEnd = "\r\n\r\n";

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
inline unsigned count_requests(const char* p, std::size_t n, std::uint8_t& matched) {
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

// listen_on: a listening socket (non-blocking when nonblock) on host:port; -1 after a message.
inline int listen_on(const std::string& host, int port, const char* who, bool nonblock) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) {
    std::fprintf(stderr, "%s: not an IPv4 address: %s\n", who, host.c_str());
    return -1;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0) | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    std::fprintf(stderr, "%s: %s:%d: %s\n", who, host.c_str(), port, std::strerror(errno));
    return -1;
  }
  return fd;
}

// g_stop: set by SIGINT or SIGTERM; the server's wait returns EINTR then (no SA_RESTART).
inline volatile sig_atomic_t g_stop = 0;

// floor_main: parses --host and --port, listens, arranges the stop signals, prints "listening
// <port>", and returns serve(listening fd)'s status.
template <class Serve>
int floor_main(int argc, char** argv, const char* who, const char* what, bool nonblock, Serve serve) {
  std::string host = "127.0.0.1";
  int port = 0;
  CLI::App app{what};
  app.add_option("--host", host, "IPv4 address to listen on");
  app.add_option("--port", port, "port (0: any; the chosen one is printed)");
  CLI11_PARSE(app, argc, argv);
  int lfd = listen_on(host, port, who, nonblock);
  if (lfd < 0) return 1;
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  std::printf("listening %d\n", ntohs(a.sin_port));
  std::fflush(stdout);
  return serve(lfd);
}

}  // namespace floor_peer
