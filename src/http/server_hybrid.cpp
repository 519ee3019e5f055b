// server_hybrid.cpp: HybridServer: event loops detect readiness, goroutines run the requests
// (server.hpp, design.md §4).
//
// The problem. A goroutine per connection is the simplest code, but 10,000 idle keep-alive
// connections hold 10,000 parked goroutines and their stacks; a reactor holds no stack per
// connection but turns every handler into callbacks. The hybrid keeps the goroutine's blocking
// style for the work and the reactor's memory for the wait.
//
// The approach. The runtime's netpoller is the event loop: each socket is registered once,
// edge-triggered, both directions, with a notify callback instead of a goroutine parked in its
// read slot (netpoll_open_notify). The M that polls (an M out of work, or the one blocked in
// epoll_wait) calls it for every readable edge, and it starts the connection's goroutine on that
// M's own P: no thread hands work to another. A connection's `state` word is the whole protocol
// between the callback and the goroutines:
//   kIdle     no goroutine; nobody, or the sweep, touches the session
//   kRunning  one goroutine owns the session and reads until the socket would block
//   kNotified kRunning, and readiness arrived meanwhile: the goroutine must read again
// A readable edge CASes kIdle -> kRunning and starts a goroutine, or marks kRunning ->
// kNotified. The goroutine, when the socket is drained, CASes kRunning -> kIdle and ends; if that
// fails it was notified, so it goes round again. Readiness is therefore never lost, and two
// goroutines never share a session. A goroutine whose write would block parks in the netpoller's
// write slot, as any mpg::net writer does.
// A sweeper goroutine looks at every connection once a second: an idle one past the keep-alive
// timeout is closed, one whose header is overdue gets its 408. The sweep claims a connection
// (kIdle -> kRunning) before it touches the session, exactly as the callback would.
// The first version ran its own event loop threads (mpg::reactor::EventLoop) that handed every
// readable connection to the runtime through the global queue: 0.3 context switches per request
// and the highest CPU per request of the three servers (docs/servers.md has the A/B).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "http/io_bufs.hpp"
#include "http/peer_ip.hpp"
#include "mpg/http/server.hpp"
#include "mpg/http/session.hpp"
#include "mpg/mpg.hpp"
#include "poll/sys.hpp"
#include "runtime/netpoll.hpp"
#include "runtime/platform.hpp"

namespace mpg::http {

namespace rt = mpg::detail;  // the runtime's netpoller (mpg::http::detail is the HTTP core's)
using rt::PollDesc;
using rt::PollErr;

namespace {

constexpr auto kSweepEvery = std::chrono::seconds(1);     // timeouts are checked this often
constexpr auto kDrainPoll = std::chrono::milliseconds(5);
constexpr auto kAcceptPause = std::chrono::milliseconds(100);  // after EMFILE/ENFILE
constexpr int kIdle = 0, kRunning = 1, kNotified = 2;

using Clock = std::chrono::steady_clock;

}  // namespace

struct HybridServer::Impl {
  struct Conn {
    Conn(Impl* s, int f, std::string peer) : srv(s), fd(f), sess(s->handler, s->opt.limits), ip(std::move(peer)) {
      sess.set_remote_ip(ip);
    }
    Impl* srv;
    int fd;
    PollDesc* pd = nullptr;  // registered with on_ready; set before anyone else can see the Conn
    ServerSession sess;      // owned by whoever holds the state word (see above)
    const std::string ip;    // the peer's address (Request::remote_ip)
    std::atomic<int> state{kIdle};
    std::atomic<std::int64_t> last_active{0};  // coarse nanotime of the last burst
    std::size_t slot = 0;                      // index in conns (mu)
    Conn* next_doomed = nullptr;               // in the doomed stack (see on_hangup)
  };

  Handler handler;
  ServerOptions opt;
  int listen_fd = -1;
  PollDesc* listen_pd = nullptr;
  std::uint16_t port = 0;
  mpg::Mutex mu;
  std::vector<Conn*> conns;  // (mu) every open connection, for the sweep and shutdown
  mpg::WaitGroup acceptor, sweeper;
  mpg::Chan<int> stop_sweep;
  bool started = false;
  std::atomic<bool> draining{false};
  std::atomic<std::uint64_t> accepted{0}, open{0}, header_timeouts{0}, idle_closes{0};
  // running: connection goroutines not yet finished. A goroutine that closed its connection
  // still runs for a moment after `open` dropped; shutdown waits for this to reach zero before
  // the server may be destroyed.
  std::atomic<std::uint64_t> running{0};
  // doomed: connections whose peer hung up while idle, for the reaper goroutine to close
  // (on_hangup); reaper_on: a reaper runs or is about to.
  std::atomic<Conn*> doomed{nullptr};
  std::atomic<bool> reaper_on{false};

  // on_ready: the netpoller's callback for a readable edge (or a hang-up) on c's socket; runs on
  // the polling M under the netpoller's registration lock, so it only moves the state word and
  // starts a goroutine.
  static void on_ready(void* arg, bool hup, rt::GList& out) {
    auto* c = static_cast<Conn*>(arg);
    if (hup && c->srv->on_hangup(c, out)) return;
    int s = c->state.load(std::memory_order_acquire);
    for (;;) {
      if (s == kIdle) {
        if (c->state.compare_exchange_weak(s, kRunning, std::memory_order_acq_rel)) {
          c->srv->running.fetch_add(1, std::memory_order_relaxed);
          rt::netpoll_go(out, [c] { c->srv->run_conn(c); });
          return;
        }
      } else {
        // kRunning -> kNotified, or kNotified again: a read-modify-write either way, so the
        // goroutine's failing CAS also sees what the netpoller stored before this call (hint_off).
        if (c->state.compare_exchange_weak(s, kNotified, std::memory_order_acq_rel)) return;
      }
    }
  }
  // on_hangup: the peer hung up (or the socket failed). If no goroutine owns the connection and
  // nothing is left to read, it is closed by the reaper, one goroutine for every hang-up in a
  // burst: otherwise 10,000 clients leaving at once start 10,000 goroutines only to read EOF, and
  // the runtime's G pool keeps their stacks resident (the 10-minute soak ended at +77% RSS).
  // Data still queued before the FIN (a last request) gets a goroutine as usual. False: let
  // on_ready go on (a goroutine owns the connection, or data is queued).
  bool on_hangup(Conn* c, rt::GList& out) {
    int s = kIdle;
    if (!c->state.compare_exchange_strong(s, kRunning, std::memory_order_acq_rel)) return false;
    char b;
    ssize_t k = ::recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (k > 0) {
      c->state.store(kIdle, std::memory_order_release);  // a last request: on_ready starts its goroutine
      return false;
    }
    if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
      c->state.store(kIdle, std::memory_order_release);  // no EOF to read after all: idle again
      return true;
    }
    c->next_doomed = doomed.load(std::memory_order_relaxed);
    while (!doomed.compare_exchange_weak(c->next_doomed, c, std::memory_order_seq_cst)) {
    }
    if (!reaper_on.exchange(true, std::memory_order_seq_cst)) {
      running.fetch_add(1, std::memory_order_relaxed);
      rt::netpoll_go(out, [this] {
        reap();
        running.fetch_sub(1, std::memory_order_release);
      });
    }
    return true;
  }
  // reap: closes the doomed connections; lingers a few milliseconds so that a mass disconnect,
  // whose hang-ups come over several polls, needs one reaper, not one per poll.
  void reap() {
    constexpr int kLingerRounds = 10;  // x 1 ms
    for (int quiet = 0;;) {
      if (Conn* c = doomed.exchange(nullptr, std::memory_order_seq_cst)) {
        quiet = 0;
        while (c) {
          Conn* next = c->next_doomed;
          finish(c);
          c = next;
        }
        continue;
      }
      if (quiet++ < kLingerRounds) {
        mpg::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      // A hang-up pushed after this store starts a reaper of its own; one pushed before it is
      // seen by the load below.
      reaper_on.store(false, std::memory_order_seq_cst);
      if (!doomed.load(std::memory_order_seq_cst) || reaper_on.exchange(true, std::memory_order_seq_cst)) return;
      quiet = 0;
    }
  }
  void run_conn(Conn* c) {
    run(c);
    running.fetch_sub(1, std::memory_order_release);  // the goroutine's last touch of *this
  }
  // add_conn: registers an accepted socket. Under mu, so the connection is in `conns` before a
  // goroutine started by its first edge can finish it (finish takes mu to remove it).
  void add_conn(int fd, std::string ip) {
    auto* c = new Conn(this, fd, std::move(ip));
    c->last_active.store(rt::coarse_nanotime(), std::memory_order_relaxed);
    std::lock_guard<mpg::Mutex> lk(mu);
    // Registering a socket that already has data reports it at once (epoll checks readiness on
    // EPOLL_CTL_ADD), so a request sent before this point is not missed.
    int err = 0;
    if (!rt::netpoll_open_notify(fd, &on_ready, c, &c->pd, &err)) {
      std::fprintf(stderr, "mpg http (hybrid): netpoll: %s\n", std::strerror(err));
      ::close(fd);
      delete c;
      open.fetch_sub(1, std::memory_order_relaxed);
      if (opt.on_close) opt.on_close();
      return;
    }
    c->slot = conns.size();
    conns.push_back(c);
  }
  // finish: closes c for good. The caller holds the state word (its goroutine, or the sweep that
  // claimed it), which stays kRunning or kNotified: no goroutine is started for it again.
  void finish(Conn* c) {
    {
      std::lock_guard<mpg::Mutex> lk(mu);
      Conn* last = conns.back();
      conns[c->slot] = last;
      last->slot = c->slot;
      conns.pop_back();
    }
    rt::netpoll_evict(c->pd);
    rt::netpoll_close(c->pd);  // once it returns, on_ready never sees c again
    ::close(c->fd);
    delete c;
    open.fetch_sub(1, std::memory_order_relaxed);
    if (opt.on_close) opt.on_close();
  }
  // release: the sweep gives a claimed connection back; starts its goroutine if readiness came
  // meanwhile.
  void release(Conn* c) {
    int s = kRunning;
    if (c->state.compare_exchange_strong(s, kIdle, std::memory_order_acq_rel)) return;
    c->state.store(kRunning, std::memory_order_release);
    running.fetch_add(1, std::memory_order_relaxed);
    mpg::go([this, c] { run_conn(c); });
  }
  void sweep(bool force) {
    std::vector<Conn*> claimed;
    {
      std::lock_guard<mpg::Mutex> lk(mu);
      claimed.reserve(conns.size());
      for (Conn* c : conns) {
        int s = kIdle;
        if (c->state.compare_exchange_strong(s, kRunning, std::memory_order_acq_rel)) claimed.push_back(c);
        else if (force) ::shutdown(c->fd, SHUT_RDWR);  // its goroutine's next read or write fails
      }
    }
    std::int64_t now = rt::coarse_nanotime();
    std::int64_t idle_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(opt.limits.idle_timeout).count();
    for (Conn* c : claimed) {
      bool idle = c->sess.idle();
      if (force || (idle && draining.load(std::memory_order_relaxed))) {
        finish(c);
      } else if (c->sess.header_pending() && Clock::now() >= c->sess.header_deadline()) {
        header_timeouts.fetch_add(1, std::memory_order_relaxed);
        std::string out;
        c->sess.on_header_timeout(out);
        [[maybe_unused]] ssize_t w = ::send(c->fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        finish(c);
      } else if (idle && now - c->last_active.load(std::memory_order_relaxed) > idle_ns &&
                 c->state.load(std::memory_order_acquire) != kNotified) {  // a request came meanwhile: serve it
        idle_closes.fetch_add(1, std::memory_order_relaxed);
        finish(c);
      } else {
        release(c);
      }
    }
  }
  void sweep_loop() {
    for (;;) {
      bool stop = false;
      mpg::select(mpg::on_recv(stop_sweep, [&](std::optional<int>) { stop = true; }), mpg::on_timeout(kSweepEvery, [] {}));
      if (stop) return;
      sweep(false);
    }
  }
  void accept_loop() {
    Clock::time_point last_log{};
    std::uint64_t suppressed = 0;
    while (!draining.load(std::memory_order_acquire)) {
      sockaddr_storage peer{};
      socklen_t plen = sizeof peer;
      int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EAGAIN) {
          if (rt::netpoll_wait(listen_pd, 'r') != PollErr::None) break;  // shutdown evicted it
          continue;
        }
        // Out of descriptors (or memory): pause instead of spinning on a listener that stays
        // readable; say so at most once a second.
        int err = errno;
        auto now = Clock::now();
        if (now - last_log >= std::chrono::seconds(1)) {
          std::fprintf(stderr, "mpg http (hybrid): accept: %s; pausing %lld ms (%llu similar messages suppressed)\n",
                       std::strerror(err), static_cast<long long>(kAcceptPause.count()),
                       static_cast<unsigned long long>(suppressed));
          last_log = now;
          suppressed = 0;
        } else {
          suppressed++;
        }
        mpg::sleep_for(kAcceptPause);
        continue;
      }
      accepted.fetch_add(1, std::memory_order_relaxed);
      if (opt.on_open && !opt.on_open()) {
        ::close(fd);  // refused by the connection limit
        continue;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      open.fetch_add(1, std::memory_order_relaxed);
      add_conn(fd, detail::peer_ip(peer));
    }
    // shutdown() closes the listener once this goroutine is gone: it evicts listen_pd itself,
    // which it may only do while the PollDesc is still the listener's.
  }

  // --- the connection's goroutine ---
  void run(Conn* c) {
    detail::IoBufs* b = detail::take_bufs();  // this burst's read buffer and responses
    bool done = run_burst(c, b->in, b->out);
    detail::give_bufs(b, opt.limits.retain_bytes);
    if (done) finish(c);
  }
  // run_burst: reads and answers until the socket is drained; true when the connection is done.
  bool run_burst(Conn* c, char* buf, std::string& out) {
    for (;;) {
      bool close = false;
      for (;;) {
        ssize_t k = sys::read(c->fd, buf, detail::kReadBytes);
        // A short read emptied the socket: stop here instead of making a read that would only
        // say EAGAIN. Data that comes later raises a new edge (on_ready); a FIN already queued
        // behind the data does not, nor data behind an urgent mark, so not once the netpoller
        // has seen either (PollDesc::hint_off).
        bool drained = k > 0 && rt::short_read_drained(c->pd, std::size_t(k), detail::kReadBytes);
        if (k > 0) {
          SessionStatus st = c->sess.on_data(std::string_view(buf, std::size_t(k)), out);
          if (!out.empty()) {
            if (!rt::netpoll_send_all(c->fd, c->pd, out.data(), out.size()).ok()) {
              close = true;
              break;
            }
            out.clear();
          }
          if (st == SessionStatus::kCloseAfterWrite) {
            close = true;
            break;
          }
          if (drained) break;
          continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && errno == EAGAIN) break;
        close = true;  // EOF or an error
        break;
      }
      if (close || (draining.load(std::memory_order_acquire) && c->sess.idle())) return true;
      c->last_active.store(rt::coarse_nanotime(), std::memory_order_relaxed);
      int s = kRunning;
      if (c->state.compare_exchange_strong(s, kIdle, std::memory_order_acq_rel)) return false;
      // Notified meanwhile: again. An exchange, not a store: it reads the latest notification,
      // so this goroutine also sees what the netpoller stored before it (PollDesc::hint_off).
      c->state.exchange(kRunning, std::memory_order_acq_rel);
    }
  }
};

HybridServer::HybridServer(Handler handler, ServerOptions opt) : impl_(new Impl) {
  impl_->handler = std::move(handler);
  impl_->opt = std::move(opt);
}

HybridServer::~HybridServer() {
  // Started and never shut down (an error path): its goroutines and netpoller callbacks still
  // use *impl_. Shut down here if we can; outside a goroutine we cannot, and freeing it would
  // corrupt memory.
  if (!impl_->started || impl_->draining.load()) return;
  if (mpg::in_goroutine()) {
    shutdown(std::chrono::milliseconds(0));
    return;
  }
  std::fprintf(stderr, "mpg http: HybridServer destroyed while running, outside a goroutine; call shutdown() first\n");
  std::abort();
}

static int listen_socket(const std::string& host, std::uint16_t port, std::uint16_t* bound) {
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) == 1) {
    family = sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    len = sizeof *sin;
  } else if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) == 1) {
    family = sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    len = sizeof *sin6;
  } else {
    throw std::runtime_error("HybridServer: not a numeric address: " + host);
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 4096) != 0) {
    int e = errno;
    if (fd >= 0) ::close(fd);
    throw std::runtime_error(std::string("HybridServer: listen: ") + std::strerror(e));
  }
  len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  *bound = ntohs(family == AF_INET ? sin->sin_port : sin6->sin6_port);
  return fd;
}

void HybridServer::start() {
  Impl* im = impl_.get();
  if (!mpg::in_goroutine()) throw std::runtime_error("HybridServer::start: call it from a goroutine");
  im->listen_fd = listen_socket(im->opt.host, im->opt.port, &im->port);
  int err = 0;
  im->listen_pd = rt::netpoll_open(im->listen_fd, &err);
  if (!im->listen_pd) {
    ::close(im->listen_fd);
    throw std::runtime_error(std::string("HybridServer: netpoll: ") + std::strerror(err));
  }
  im->started = true;
  im->acceptor.add(1);
  im->sweeper.add(1);
  mpg::go([im] {
    im->accept_loop();
    im->acceptor.done();
  });
  mpg::go([im] {
    im->sweep_loop();
    im->sweeper.done();
  });
}

std::uint16_t HybridServer::port() const { return impl_->port; }

void HybridServer::shutdown(std::chrono::milliseconds grace) {
  Impl* im = impl_.get();
  if (!im->started || im->draining.exchange(true)) return;
  rt::netpoll_evict(im->listen_pd);  // the acceptor wakes with Closing (or sees draining) and ends
  im->acceptor.wait();
  rt::netpoll_close(im->listen_pd);
  ::close(im->listen_fd);
  auto until = Clock::now() + grace;
  while (im->open.load(std::memory_order_acquire) > 0 && Clock::now() < until) {
    im->sweep(false);
    mpg::sleep_for(kDrainPoll);
  }
  auto hard = Clock::now() + std::chrono::seconds(2);
  while (im->open.load(std::memory_order_acquire) > 0 && Clock::now() < hard) {
    im->sweep(true);
    mpg::sleep_for(kDrainPoll);
  }
  im->stop_sweep.close();
  im->sweeper.wait();
  // Wait for every connection goroutine, without a bound (as the goroutine server's WaitGroup):
  // the forced sweep shut their sockets down, but a handler may still run for as long as it
  // likes, and its goroutine touches the server when it ends.
  while (im->running.load(std::memory_order_acquire) > 0) mpg::sleep_for(std::chrono::milliseconds(1));
}

ServerStats HybridServer::stats() const {
  ServerStats s;
  s.accepted = impl_->accepted.load(std::memory_order_relaxed);
  s.open = impl_->open.load(std::memory_order_relaxed);
  s.header_timeouts = impl_->header_timeouts.load(std::memory_order_relaxed);
  s.idle_closes = impl_->idle_closes.load(std::memory_order_relaxed);
  return s;
}

}  // namespace mpg::http
