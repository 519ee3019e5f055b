// net.cpp: mpg::net on the netpoller (see include/mpg/net.hpp for the contract; addresses are
// in addr.cpp).
//
// The descriptor's life (Go's fdMutex, reduced to what mpg needs). A NetFd counts the calls in
// progress; close() marks it closed (new calls fail with Closed), evicts the PollDesc (blocked
// calls wake with Closed) and drops the open reference. The descriptor is unregistered and
// closed only when the last call has left, so a read() still inside the kernel never sees its
// descriptor number reused by another connection.
#include "mpg/net.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "mpg/mutex.hpp"
#include "mpg/runtime.hpp"
#include "net/addr.hpp"
#include "poll/sys.hpp"
#include "runtime/netpoll.hpp"
#include "runtime/platform.hpp"

namespace mpg::net {

namespace detail {

struct NetFd {
  int sysfd = -1;
  mpg::detail::PollDesc* pd = nullptr;
  std::uint64_t run_id = 0;
  // state: bit 0 closed; the rest counts references (the open one plus each call in progress).
  static constexpr std::uint64_t kClosed = 1, kRef = 2;
  std::atomic<std::uint64_t> state{kRef};
  mpg::Mutex rmu, wmu;  // one reader and one writer at a time (one wait slot per direction)
  bool drained = false;  // (rmu) the last read was short: the socket was empty then (see read)
  bool tcp = false;
  Addr raddr;
  std::string unlink_path;  // a Unix listener's socket file, removed at close
  std::atomic<std::uint64_t> accept_retries{0};

  bool incref() {
    std::uint64_t s = state.load(std::memory_order_relaxed);
    do {
      if (s & kClosed) return false;
    } while (!state.compare_exchange_weak(s, s + kRef, std::memory_order_acquire, std::memory_order_relaxed));
    return true;
  }
  void decref() {
    if (state.fetch_sub(kRef, std::memory_order_acq_rel) - kRef == kClosed) destroy();
  }
  // close: marks closed and wakes waiters; false if it was closed already.
  bool close() {
    if (state.fetch_or(kClosed, std::memory_order_acq_rel) & kClosed) return false;
    if (pd && live()) mpg::detail::netpoll_evict(pd);
    decref();
    return true;
  }
  bool live() const { return run_id != 0 && run_id == mpg::detail::netpoll_run_id(); }
  void destroy() {
    if (pd && live()) mpg::detail::netpoll_close(pd);
    pd = nullptr;
    ::close(sysfd);
    sysfd = -1;
    if (!unlink_path.empty()) ::unlink(unlink_path.c_str());
  }
  ~NetFd() {
    if (!(state.load(std::memory_order_relaxed) & kClosed)) close();
  }
};

}  // namespace detail

using detail::NetFd;
using detail::resolve;
using detail::Resolved;

namespace {

constexpr std::int64_t kAcceptBackoffMinNs = 5'000'000;    // 5 ms, as net/http
constexpr std::int64_t kAcceptBackoffMaxNs = 250'000'000;  // a closing listener waits at most this
constexpr std::int64_t kLogIntervalNs = 1'000'000'000;

Error closed_error() { return Error{Errc::Closed, 0}; }

Error poll_error(mpg::detail::PollErr e) {
  if (e == mpg::detail::PollErr::Timeout) return Error{Errc::Timeout, ETIMEDOUT};
  return closed_error();
}

// Op: a call in progress on a NetFd (holds a reference for its duration).
class Op {
 public:
  explicit Op(NetFd* f) : f_(f && f->incref() ? f : nullptr) {
    if (f_ && !f_->live()) {  // the run that made it has ended
      f_->decref();
      f_ = nullptr;
    }
  }
  ~Op() {
    if (f_) f_->decref();
  }
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;
  explicit operator bool() const { return f_ != nullptr; }
  NetFd* operator->() const { return f_; }

 private:
  NetFd* f_;
};

Error check(NetFd* f, char mode) {
  auto e = mpg::detail::netpoll_prepare(f->pd, mode);
  return e == mpg::detail::PollErr::None ? Error{} : poll_error(e);
}

Error wait(NetFd* f, char mode) {
  auto e = mpg::detail::netpoll_wait(f->pd, mode);
  return e == mpg::detail::PollErr::None ? Error{} : poll_error(e);
}

// new_fd: wraps a connected or listening non-blocking socket, registered with the netpoller.
std::pair<std::shared_ptr<NetFd>, Error> new_fd(int s, bool tcp) {
  int err = 0;
  auto f = std::make_shared<NetFd>();
  mpg::detail::PollDesc* pd = mpg::detail::netpoll_open(s, &err, &f->state);
  if (!pd) {
    ::close(s);
    return {nullptr, Error::from_errno(err)};
  }
  f->sysfd = s;
  f->pd = pd;
  f->run_id = mpg::detail::netpoll_run_id();
  f->tcp = tcp;
  return {std::move(f), Error{}};
}

Error setopt(const std::shared_ptr<NetFd>& fd, int level, int name, int value) {
  Op op(fd.get());
  if (!op) return closed_error();
  if (::setsockopt(op->sysfd, level, name, &value, sizeof value) != 0) return Error::from_errno(errno);
  return {};
}

Error set_deadline_mode(const std::shared_ptr<NetFd>& fd, Clock::time_point t, char mode) {
  Op op(fd.get());
  if (!op) return closed_error();
  std::int64_t when = 0;
  if (t != Clock::time_point{}) {
    when = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    if (when <= 0) when = 1;  // long past: expired
  }
  mpg::detail::netpoll_set_deadline(op->pd, when, mode);
  return {};
}

// local_addr_of: the descriptor's own address (getsockname); empty if closed.
Addr local_addr_of(NetFd* f) {
  Addr a;
  Op op(f);
  if (!op) return a;
  a.len = sizeof a.ss;
  if (::getsockname(op->sysfd, reinterpret_cast<sockaddr*>(&a.ss), &a.len) != 0) a = Addr{};
  return a;
}

// sysfd_of: the descriptor number, -1 once closed.
int sysfd_of(const NetFd* f) {
  if (!f || (f->state.load(std::memory_order_relaxed) & NetFd::kClosed)) return -1;
  return f->sysfd;
}

int new_socket(int family) { return ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }

int somaxconn() {
  static const int v = [] {
    int n = 4096;
    if (FILE* f = std::fopen("/proc/sys/net/core/somaxconn", "r")) {
      if (std::fscanf(f, "%d", &n) != 1 || n <= 0) n = 4096;
      std::fclose(f);
    }
    return n;
  }();
  return v;
}

// log_accept_error: at most one line a second, counting the ones it held back.
void log_accept_error(int err, std::int64_t backoff_ns) {
  static std::atomic<std::int64_t> last{0};
  static std::atomic<std::uint64_t> suppressed{0};
  std::int64_t now = mpg::detail::nanotime();
  std::int64_t l = last.load(std::memory_order_relaxed);
  if (now - l < kLogIntervalNs || !last.compare_exchange_strong(l, now)) {
    suppressed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::fprintf(stderr, "mpg net: accept: %s; retrying in %lld ms (%llu similar messages suppressed)\n",
               std::strerror(err), static_cast<long long>(backoff_ns / 1'000'000),
               static_cast<unsigned long long>(suppressed.exchange(0)));
}

void require_goroutine(const char* what) {
  if (!mpg::in_goroutine()) {
    std::fprintf(stderr, "mpg net: %s called outside a goroutine\n", what);
    std::abort();
  }
}

}  // namespace

// --- Conn ---

IoResult Conn::read(void* buf, std::size_t n) {
  Op op(fd_.get());
  if (!op) return {0, closed_error()};
  std::lock_guard<mpg::Mutex> lk(op->rmu);
  if (Error e = check(fd_.get(), 'r')) return {0, e};
  if (n == 0) return {};
  // The read hint (a deviation from Go, measured in docs/net.md). A stream socket's read returns
  // all the data queued up to n bytes, so after a short read the socket held no more data, and
  // data that arrives later raises a new edge-triggered event. So the next read waits for
  // readiness first instead of paying for a read that would say EAGAIN: one syscall less per
  // request-response round; if the event came already, the wait returns at once. TCP only: a
  // Unix stream read also stops after a message that carried descriptors (SCM_RIGHTS), with
  // data behind it. Not after the peer's FIN, an error or urgent data was seen (pd->hint_off):
  // a short read does not report a FIN queued behind the data, and stops at an urgent mark with
  // data behind it, and the event for those may have been consumed already, so the next read
  // must ask the kernel (found by HalfClose under ASan; HintNeverHidesAQueuedFin and
  // HintNeverHidesDataBehindAnUrgentMark pin them down).
  if (op->drained) {
    op->drained = false;
    if (Error w = wait(fd_.get(), 'r')) return {0, w};
  }
  for (;;) {
    ssize_t k = sys::read(op->sysfd, buf, n);
    if (k > 0) {
      op->drained = op->tcp && mpg::detail::short_read_drained(op->pd, std::size_t(k), n);
      return {std::size_t(k), {}};
    }
    if (k == 0) return {0, Error{Errc::Eof, 0}};
    int e = errno;
    if (e == EINTR) continue;
    if (e != EAGAIN) return {0, Error::from_errno(e)};
    if (Error w = wait(fd_.get(), 'r')) return {0, w};
  }
}

Error Conn::wait_readable() {
  Op op(fd_.get());
  if (!op) return closed_error();
  std::lock_guard<mpg::Mutex> lk(op->rmu);
  if (Error e = check(fd_.get(), 'r')) return e;
  if (!op->drained) return {};
  op->drained = false;
  return wait(fd_.get(), 'r');
}

IoResult Conn::read_full(void* buf, std::size_t n) {
  IoResult total;
  auto* p = static_cast<char*>(buf);
  while (total.n < n) {
    IoResult r = read(p + total.n, n - total.n);
    total.n += r.n;
    if (r.err) {
      total.err = r.err;
      break;
    }
  }
  return total;
}

IoResult Conn::write(const void* buf, std::size_t n) {
  Op op(fd_.get());
  if (!op) return {0, closed_error()};
  std::lock_guard<mpg::Mutex> lk(op->wmu);
  if (Error e = check(fd_.get(), 'w')) return {0, e};
  mpg::detail::SendResult r = mpg::detail::netpoll_send_all(op->sysfd, op->pd, buf, n);
  if (r.err) return {r.done, Error::from_errno(r.err)};
  if (r.perr != mpg::detail::PollErr::None) return {r.done, poll_error(r.perr)};
  return {r.done, {}};
}

Error Conn::close_write() {
  Op op(fd_.get());
  if (!op) return closed_error();
  if (::shutdown(op->sysfd, SHUT_WR) != 0) return Error::from_errno(errno);
  return {};
}

Error Conn::close() {
  if (!fd_ || !fd_->close()) return closed_error();
  return {};
}

Error Conn::set_deadline(Clock::time_point t) { return set_deadline_mode(fd_, t, 'b'); }
Error Conn::set_read_deadline(Clock::time_point t) { return set_deadline_mode(fd_, t, 'r'); }
Error Conn::set_write_deadline(Clock::time_point t) { return set_deadline_mode(fd_, t, 'w'); }

Error Conn::set_nodelay(bool on) {
  if (fd_ && !fd_->tcp) return {};
  return setopt(fd_, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
}

Error Conn::set_keepalive(bool on, std::chrono::seconds idle, std::chrono::seconds interval, int count) {
  if (Error e = setopt(fd_, SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0)) return e;
  if (!on) return {};
  if (idle.count() > 0)
    if (Error e = setopt(fd_, IPPROTO_TCP, TCP_KEEPIDLE, int(idle.count()))) return e;
  if (interval.count() > 0)
    if (Error e = setopt(fd_, IPPROTO_TCP, TCP_KEEPINTVL, int(interval.count()))) return e;
  if (count > 0)
    if (Error e = setopt(fd_, IPPROTO_TCP, TCP_KEEPCNT, count)) return e;
  return {};
}

Error Conn::set_read_buffer(int bytes) { return setopt(fd_, SOL_SOCKET, SO_RCVBUF, bytes); }
Error Conn::set_write_buffer(int bytes) { return setopt(fd_, SOL_SOCKET, SO_SNDBUF, bytes); }

Error Conn::set_linger(int seconds) {
  Op op(fd_.get());
  if (!op) return closed_error();
  linger l{seconds >= 0 ? 1 : 0, seconds >= 0 ? seconds : 0};
  if (::setsockopt(op->sysfd, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0) return Error::from_errno(errno);
  return {};
}

Addr Conn::local_addr() const { return local_addr_of(fd_.get()); }

Addr Conn::remote_addr() const { return fd_ ? fd_->raddr : Addr{}; }

int Conn::fd() const { return sysfd_of(fd_.get()); }

// --- Listener ---

std::pair<Conn, Error> Listener::accept() {
  require_goroutine("Listener::accept");
  Op op(fd_.get());
  if (!op) return {Conn{}, closed_error()};
  std::lock_guard<mpg::Mutex> lk(op->rmu);
  if (Error e = check(fd_.get(), 'r')) return {Conn{}, e};
  std::int64_t backoff = 0;
  for (;;) {
    Addr peer;
    peer.len = sizeof peer.ss;
    int s = ::accept4(op->sysfd, reinterpret_cast<sockaddr*>(&peer.ss), &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (s >= 0) {
      auto [f, err] = new_fd(s, op->tcp);
      if (err) return {Conn{}, err};
      f->raddr = peer;
      Conn c;
      c.fd_ = std::move(f);
      if (op->tcp) c.set_nodelay(true);
      return {std::move(c), Error{}};
    }
    int e = errno;
    switch (e) {
      case EINTR:
      case ECONNABORTED:  // the peer gave up while queued: take the next one
        continue;
      case EAGAIN:
        if (Error w = wait(fd_.get(), 'r')) return {Conn{}, w};
        continue;
      case EMFILE:
      case ENFILE:
      case ENOBUFS:
      case ENOMEM:
        // Out of descriptors or memory: the connection stays queued in the kernel. Sleep and try
        // again (a spinning accept loop would burn a CPU and flood the log); the wait doubles.
        backoff = backoff ? std::min(backoff * 2, kAcceptBackoffMaxNs) : kAcceptBackoffMinNs;
        op->accept_retries.fetch_add(1, std::memory_order_relaxed);
        log_accept_error(e, backoff);
        mpg::sleep_for(std::chrono::nanoseconds(backoff));
        if (Error c = check(fd_.get(), 'r')) return {Conn{}, c};
        continue;
      default:
        return {Conn{}, Error::from_errno(e)};
    }
  }
}

Error Listener::close() {
  if (!fd_ || !fd_->close()) return closed_error();
  return {};
}

Error Listener::set_deadline(Clock::time_point t) { return set_deadline_mode(fd_, t, 'r'); }

Addr Listener::addr() const { return local_addr_of(fd_.get()); }

int Listener::fd() const { return sysfd_of(fd_.get()); }

std::uint64_t Listener::accept_retries() const {
  return fd_ ? fd_->accept_retries.load(std::memory_order_relaxed) : 0;
}

std::pair<Listener, Error> listen(std::string_view network, std::string_view address, ListenOptions opt) {
  require_goroutine("mpg::net::listen");
  Resolved r = resolve(network, address, true);
  if (r.err) return {Listener{}, r.err};
  bool unix_sock = network == "unix";
  Error last;
  for (const Addr& a : r.addrs) {
    int s = new_socket(a.family());
    if (s < 0) {
      last = Error::from_errno(errno);
      continue;  // e.g. no IPv6 here: the IPv4 fallback follows
    }
    int one = 1;
    if (!unix_sock) ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (opt.reuse_port) ::setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (a.family() == AF_INET6) {
      int v6only = r.dual_stack ? 0 : 1;
      ::setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    }
    if (::bind(s, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0 ||
        ::listen(s, opt.backlog > 0 ? opt.backlog : somaxconn()) != 0) {
      last = Error::from_errno(errno);
      ::close(s);
      if (last.code == Errc::AddrInUse) break;
      continue;
    }
    auto [f, err] = new_fd(s, !unix_sock);
    if (err) return {Listener{}, err};
    const auto* sun = reinterpret_cast<const sockaddr_un*>(&a.ss);
    if (unix_sock && sun->sun_path[0] != '\0') f->unlink_path = sun->sun_path;
    Listener l;
    l.fd_ = std::move(f);
    return {std::move(l), Error{}};
  }
  return {Listener{}, last ? last : Error{Errc::BadAddress, EINVAL}};
}

std::pair<Conn, Error> dial(std::string_view network, std::string_view address, std::chrono::nanoseconds timeout) {
  require_goroutine("mpg::net::dial");
  Resolved r = resolve(network, address, false);
  if (r.err) return {Conn{}, r.err};
  bool unix_sock = network == "unix";
  std::int64_t deadline = timeout.count() > 0 ? mpg::detail::nanotime() + timeout.count() : 0;
  Error last;
  for (const Addr& a : r.addrs) {
    int s = new_socket(a.family());
    if (s < 0) {
      last = Error::from_errno(errno);
      continue;
    }
    int rc = ::connect(s, reinterpret_cast<const sockaddr*>(&a.ss), a.len);
    int e = rc == 0 ? 0 : errno;
    if (e != 0 && e != EINPROGRESS && e != EINTR) {
      ::close(s);
      last = Error::from_errno(e);
      if (unix_sock && e == EAGAIN) last = Error{Errc::Refused, e};  // a full Unix backlog
      continue;
    }
    // Register only now: a socket registered before connect() reports a spurious hang-up.
    auto [f, err] = new_fd(s, !unix_sock);
    if (err) return {Conn{}, err};
    Conn c;
    c.fd_ = f;
    if (e != 0) {
      if (deadline) mpg::detail::netpoll_set_deadline(f->pd, deadline, 'w');
      for (;;) {
        if (Error w = wait(f.get(), 'w')) {
          last = w;
          break;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        ::getsockopt(f->sysfd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr == EINPROGRESS || soerr == EALREADY || soerr == EINTR) continue;
        if (soerr != 0 && soerr != EISCONN) last = Error::from_errno(soerr);
        else last = Error{};
        break;
      }
      if (last) {
        c.close();
        continue;
      }
      if (deadline) mpg::detail::netpoll_set_deadline(f->pd, 0, 'w');
    }
    f->raddr = a;
    if (!unix_sock) c.set_nodelay(true);
    return {std::move(c), Error{}};
  }
  return {Conn{}, last ? last : Error{Errc::BadAddress, EINVAL}};
}

}  // namespace mpg::net
