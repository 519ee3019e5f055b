// net.hpp: mpg::net, sockets in blocking style for goroutines (Go's net package, the parts a
// server needs): Listener, Conn, dial, deadlines, options.
//
// Every call that would block parks only the calling goroutine: descriptors are non-blocking and
// registered with the runtime's netpoller (src/runtime/netpoll.hpp), which readies the goroutine
// when epoll reports the descriptor. Calls must be made from goroutines (inside mpg::run).
//
// Handles are shared, like Go's: copies of a Conn or Listener refer to one socket, which closes
// when close() is called or the last handle goes. One goroutine may read while another writes
// and a third closes; concurrent readers (or writers) of one Conn are serialized. close() wakes
// blocked readers and writers with Errc::Closed. A Conn must not outlive the mpg::run that made
// it (its descriptor is then just closed).
//
// Errors are values, as in Go: every call returns an Error (Errc plus the errno it came from).
#pragma once
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace mpg::net {

// Errc: what went wrong, in the classes a server acts on.
enum class Errc : std::uint8_t {
  None,
  Eof,          // the peer closed its side; no more data
  Timeout,      // a deadline passed
  Closed,       // this side closed the Conn or Listener (Go's net.ErrClosed)
  Reset,        // the peer reset the connection (ECONNRESET, EPIPE)
  Refused,      // nobody listens there (ECONNREFUSED)
  AddrInUse,    // EADDRINUSE
  BadAddress,   // an address that does not parse or resolve
  Other,        // anything else: see sys
};

// Error: an Errc and the errno behind it (0 when there is none, e.g. Eof).
struct Error {
  Errc code = Errc::None;
  int sys = 0;
  explicit operator bool() const { return code != Errc::None; }
  bool timeout() const { return code == Errc::Timeout; }
  std::string message() const;  // "timeout", "connection reset by peer (errno 104)", ...
  static Error from_errno(int e);
};

// IoResult: bytes moved and the error that stopped it (both may be set: a partial write).
struct IoResult {
  std::size_t n = 0;
  Error err;
};

// Addr: a socket address (IPv4, IPv6 or Unix), printable as Go prints it.
struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const { return ss.ss_family; }
  int port() const;                // 0 for Unix sockets
  std::string to_string() const;   // "127.0.0.1:80", "[::1]:80", "/run/x.sock"
};

namespace detail {
struct NetFd;
}

using Clock = std::chrono::steady_clock;

// Conn: a connected stream socket (TCP or Unix).
class Conn {
 public:
  Conn() = default;
  bool valid() const { return fd_ != nullptr; }
  explicit operator bool() const { return valid(); }

  // read: up to n bytes, at least 1 unless an error: Eof at the peer's end, Timeout, Closed, ...
  IoResult read(void* buf, std::size_t n);
  // wait_readable: if the last read left the socket empty (a short read: see the read hint in
  // docs/net.md), parks until data, the peer's FIN or an error arrives, without taking the bytes;
  // otherwise returns at once. A server can then hold a read buffer only while there is data:
  // an idle connection's goroutine parks with a small stack and no buffer. (mpg only; Go has no
  // such call.)
  Error wait_readable();
  // read_full: exactly n bytes, or fewer with the error that stopped it (Eof before any byte).
  IoResult read_full(void* buf, std::size_t n);
  // write: all n bytes (Go's Write), or fewer with the error that stopped it.
  IoResult write(const void* buf, std::size_t n);
  IoResult write(std::string_view s) { return write(s.data(), s.size()); }
  // close_write: shuts down the sending side (the peer reads Eof); reading goes on.
  Error close_write();
  // close: closes the socket, waking blocked readers and writers with Closed. A second close
  // returns Closed.
  Error close();

  // Deadlines (Go's): an absolute time after which pending and future calls fail with Timeout;
  // a time_point{} clears it. Moving a deadline affects calls already blocked.
  Error set_deadline(Clock::time_point t);
  Error set_read_deadline(Clock::time_point t);
  Error set_write_deadline(Clock::time_point t);

  // Options. TCP_NODELAY is on for TCP connections (Go's default).
  Error set_nodelay(bool on);
  // set_keepalive: TCP keep-alive probes after `idle` without traffic, every `interval`, giving
  // up after `count` unanswered probes (0 / zero durations: the kernel's defaults).
  Error set_keepalive(bool on, std::chrono::seconds idle = {}, std::chrono::seconds interval = {}, int count = 0);
  Error set_read_buffer(int bytes);
  Error set_write_buffer(int bytes);
  // set_linger: SO_LINGER; linger(0) makes close() send a reset instead of a FIN.
  Error set_linger(int seconds);

  Addr local_addr() const;
  Addr remote_addr() const;
  int fd() const;  // the descriptor, for options mpg::net does not cover; -1 if closed

 private:
  friend class Listener;
  friend std::pair<Conn, Error> dial(std::string_view, std::string_view, std::chrono::nanoseconds);
  std::shared_ptr<detail::NetFd> fd_;
};

struct ListenOptions {
  bool reuse_port = false;  // SO_REUSEPORT: several listeners on one port, the kernel spreads
  int backlog = 0;          // 0: /proc/sys/net/core/somaxconn, as Go
};

// Listener: a listening socket. accept() waits for a connection. When the process is out of
// descriptors (EMFILE, ENFILE) accept does not spin: it sleeps 5 ms, doubling up to 1 s, retries,
// and logs at most once a second (how many were suppressed), as Go's net/http server does.
class Listener {
 public:
  Listener() = default;
  bool valid() const { return fd_ != nullptr; }
  explicit operator bool() const { return valid(); }
  std::pair<Conn, Error> accept();
  // close: stops listening, wakes a blocked accept with Closed; a Unix socket's file is removed.
  Error close();
  Error set_deadline(Clock::time_point t);
  Addr addr() const;
  int fd() const;
  // accept_retries: accepts that failed for want of descriptors and were retried (for tests).
  std::uint64_t accept_retries() const;

 private:
  friend std::pair<Listener, Error> listen(std::string_view, std::string_view, ListenOptions);
  std::shared_ptr<detail::NetFd> fd_;
};

// listen: network "tcp" (dual-stack when the host is empty or "::"), "tcp4", "tcp6" or "unix";
// address "host:port", "[v6]:port", ":port" (every interface), or a path for "unix".
std::pair<Listener, Error> listen(std::string_view network, std::string_view address, ListenOptions opt = {});
// dial: connects; timeout 0 waits as long as the kernel does. Host names resolve through
// getaddrinfo inside mpg::blocking (the first address that connects wins).
std::pair<Conn, Error> dial(std::string_view network, std::string_view address,
                            std::chrono::nanoseconds timeout = std::chrono::nanoseconds{0});

}  // namespace mpg::net
