// server_hybrid.cpp: HybridServer: event loops detect readiness, goroutines run the requests
// (server.hpp, design.md §4).
//
// The problem. A goroutine per connection is the simplest code, but 10,000 idle keep-alive
// connections hold 10,000 parked goroutines and their stacks; a reactor holds no stack per
// connection but turns every handler into callbacks. The hybrid keeps the goroutine's blocking
// style for the work and the reactor's memory for the wait.
//
// The approach. N loop threads (mpg::reactor::EventLoop) own the sockets, registered once,
// edge-triggered, both directions. A connection's `state` word is the whole protocol between a
// loop and the goroutines:
//   kIdle     no goroutine; the loop owns the session (its timers may look at it)
//   kRunning  one goroutine owns the session and reads until the socket would block
//   kNotified kRunning, and readiness arrived meanwhile: the goroutine must read again
// A readable edge CASes kIdle -> kRunning and spawns a goroutine, or marks kRunning ->
// kNotified. The goroutine, at EAGAIN, CASes kRunning -> kIdle and ends; if that fails it was
// notified, so it goes round again. Readiness is therefore never lost, and two goroutines never
// share a session. A goroutine that must wait for a writable socket parks on a one-slot channel
// that the loop fills on the next EPOLLOUT edge.
// Each loop sweeps its connections once a second: an idle one past the keep-alive timeout is
// closed, one whose header is overdue gets its 408. The sweep claims a connection (kIdle ->
// kRunning) before it touches the session, exactly as a spawn would.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <future>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/io_bufs.hpp"
#include "http/peer_ip.hpp"
#include "mpg/http/server.hpp"
#include "mpg/http/session.hpp"
#include "mpg/mpg.hpp"
#include "mpg/reactor/event_loop.hpp"
#include "mpg/reactor/handler.hpp"
#include "poll/poller.hpp"
#include "runtime/sched.hpp"

namespace mpg::http {

namespace {

constexpr auto kSweepEvery = std::chrono::seconds(1);     // timeouts are checked this often
constexpr auto kDrainPoll = std::chrono::milliseconds(5);
constexpr auto kAcceptPause = std::chrono::milliseconds(100);  // after EMFILE/ENFILE
constexpr int kAcceptBatch = 64;                          // accepts per readable event
// kSpawnBatchMax: a loop flushes its spawn batch at this size, not only at the end of its
// iteration, so the Ms start on a long batch while the loop still dispatches (A/B, wrk, 3 pairs:
// whole-iteration batches cost pipelined req/s ~9%; capped at 4 they matched per-event spawns
// pipelined and beat them by ~10% req/s, ~9% CPU per request at 1,000 connections).
constexpr int kSpawnBatchMax = 4;
constexpr int kIdle = 0, kRunning = 1, kNotified = 2;

using Clock = std::chrono::steady_clock;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

}  // namespace

struct HybridServer::Impl {
  struct Loop;
  struct Conn {
    Conn(Impl* s, Loop* l, int f, std::string peer)
        : srv(s), loop(l), fd(f), sess(s->handler, s->opt.limits), ip(std::move(peer)) {
      sess.set_remote_ip(ip);
    }
    Impl* srv;
    Loop* loop;
    int fd;
    std::unique_ptr<reactor::HandlerBase> h;  // loop thread only (an Events)
    ServerSession sess;                   // owned by whoever holds the state word (see above)
    const std::string ip;                 // the peer's address (Request::remote_ip)
    std::atomic<int> state{kIdle};
    std::atomic<bool> want_write{false};
    // hup: the loop saw the peer's FIN or an error for this socket (set before the notify that
    // carries it, so the goroutine that owns the state sees it).
    std::atomic<bool> hup{false};
    // writable: made by the goroutine the first time a write would block (most connections
    // never need it), published before want_write; the loop reads it after want_write.
    std::unique_ptr<mpg::Chan<char>> writable;
    std::atomic<std::int64_t> last_active{0};
  };
  // Events: a connection's registration, dispatching straight to the server (48 bytes where a
  // reactor::Handler with four std::function callbacks takes 160, in every idle connection).
  struct Events final : reactor::HandlerBase {
    Events(Impl* s, Conn* conn, reactor::EventLoop& loop, int fd) : HandlerBase(loop, fd), srv(s), c(conn) {}
    bool on_read() override {
      if (ready() & (poll::kHangup | poll::kError)) {
        c->hup.store(true, std::memory_order_relaxed);
        if (srv->close_on_hangup(c)) return true;
      }
      srv->notify(c);
      return true;
    }
    bool on_close() override {
      if (!srv->close_on_hangup(c)) srv->notify(c);
      return true;
    }
    bool on_error() override { return on_close(); }
    bool on_write() override {
      if (c->want_write.exchange(false, std::memory_order_acq_rel)) c->writable->try_send(char(1));
      return true;
    }
    Impl* srv;
    Conn* c;
  };
  struct Loop {
    reactor::EventLoop* loop = nullptr;
    std::thread thread;
    std::unordered_map<int, std::unique_ptr<Conn>> conns;  // loop thread only
    mpg::detail::SpawnBatch batch;  // loop thread only; flushed before every wait
  };

  Handler handler;
  ServerOptions opt;
  std::vector<std::unique_ptr<Loop>> loops;
  int listen_fd = -1;
  std::unique_ptr<reactor::Handler> listener;  // on loops[0]
  std::uint16_t port = 0;
  std::size_t next_loop = 0;  // loops[0]'s thread only
  Clock::time_point last_accept_log{};         // loops[0]'s thread only
  std::uint64_t accept_logs_suppressed = 0;    // loops[0]'s thread only
  std::atomic<bool> draining{false};
  std::atomic<std::uint64_t> accepted{0}, open{0}, header_timeouts{0}, idle_closes{0};
  // running: connection goroutines not yet finished. A goroutine that closed its connection
  // still runs for a moment after `open` dropped; shutdown waits for this to reach zero before
  // the server may be destroyed (TSan found the destructor racing the last goroutine).
  std::atomic<std::uint64_t> running{0};

  // --- loop side ---
  // notify: a readiness event on the loop thread; may spawn the connection's goroutine.
  void notify(Conn* c) {
    int s = c->state.load(std::memory_order_acquire);
    for (;;) {
      if (s == kIdle) {
        if (c->state.compare_exchange_weak(s, kRunning, std::memory_order_acq_rel)) {
          spawn(c);
          return;
        }
      } else if (s == kRunning) {
        if (c->state.compare_exchange_weak(s, kNotified, std::memory_order_acq_rel)) return;
      } else {
        return;  // kNotified already
      }
    }
  }
  // spawn: the connection's goroutine, through its loop's SpawnBatch (loop thread only): k spawns
  // cost the runtime's global-queue lock and a wakep once per kSpawnBatchMax instead of k times;
  // the loop flushes the rest before it waits, after the iteration's events, timers and tasks
  // (measured in docs/servers.md).
  void spawn(Conn* c) {
    running.fetch_add(1, std::memory_order_relaxed);
    c->loop->batch.add([this, c] { run_conn(c); });
    if (c->loop->batch.size() >= kSpawnBatchMax) c->loop->batch.flush();
  }
  void run_conn(Conn* c) {
    run(c);
    running.fetch_sub(1, std::memory_order_release);  // the goroutine's last touch of *this
  }
  void add_conn(Loop* l, int fd, std::string ip) {
    auto c = std::make_unique<Conn>(this, l, fd, std::move(ip));
    Conn* raw = c.get();
    raw->last_active.store(now_ns(), std::memory_order_relaxed);
    raw->h = std::make_unique<Events>(this, raw, *l->loop, fd);
    raw->h->set_edge_triggered(true);
    l->conns.emplace(fd, std::move(c));
    // Registering a socket that already has data reports it at once (epoll checks readiness on
    // EPOLL_CTL_ADD), so a request sent before this point is not missed.
    raw->h->enable_reading();
    raw->h->enable_writing();
  }
  // close_on_hangup: the peer hung up (or the socket failed) and no goroutine owns the
  // connection: if nothing is left to read, the loop closes it itself. Otherwise 10,000 clients
  // leaving at once spawn 10,000 goroutines at once only to read EOF, and the runtime's G pool
  // keeps their stacks resident (the 10-minute soak ended at +77% RSS over the steady state).
  // Data still queued before the FIN (a last request) goes to a goroutine as usual. False: a
  // goroutine owns the connection and will see the hang-up itself.
  bool close_on_hangup(Conn* c) {
    // Before any hand-off: a goroutine that gets the connection must not take a short read for
    // "drained" and miss the EOF (on_close/on_error come without on_readable's flag).
    c->hup.store(true, std::memory_order_relaxed);
    int s = kIdle;
    if (!c->state.compare_exchange_strong(s, kRunning, std::memory_order_acq_rel)) return false;
    char b;
    ssize_t k = ::recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (k > 0) {
      spawn(c);  // it answers what is queued, then reads the EOF and finishes
    } else if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
      release(c);  // no EOF to read after all: idle again (the idle sweep still applies)
    } else {
      finish(c);  // EOF, reset or error, nothing queued: close (after this callback returns)
    }
    return true;
  }
  // close_conn: loop thread; the caller holds the state word (a goroutine that finished, or
  // the sweep that claimed it), so nobody else touches the session.
  void close_conn(Loop* l, int fd) {
    auto it = l->conns.find(fd);
    if (it == l->conns.end()) return;
    it->second->h->remove();
    ::close(fd);
    l->conns.erase(it);
    open.fetch_sub(1, std::memory_order_relaxed);
    if (opt.on_close) opt.on_close();
  }
  // release: the sweep gives a claimed connection back; spawns if readiness came meanwhile.
  void release(Conn* c) {
    int s = kRunning;
    if (c->state.compare_exchange_strong(s, kIdle, std::memory_order_acq_rel)) return;
    c->state.store(kRunning, std::memory_order_release);
    spawn(c);
  }
  void sweep(Loop* l, bool force) {
    std::int64_t now = now_ns();
    std::int64_t idle_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(opt.limits.idle_timeout).count();
    std::vector<int> doomed;
    for (auto& [fd, c] : l->conns) {
      int s = kIdle;
      if (!c->state.compare_exchange_strong(s, kRunning, std::memory_order_acq_rel)) {
        if (force) ::shutdown(fd, SHUT_RDWR);  // its goroutine's next read or write fails
        continue;
      }
      bool idle = c->sess.idle();
      if (force || (idle && draining.load(std::memory_order_relaxed))) {
        doomed.push_back(fd);
      } else if (c->sess.header_pending() && Clock::now() >= c->sess.header_deadline()) {
        header_timeouts.fetch_add(1, std::memory_order_relaxed);
        std::string out;
        c->sess.on_header_timeout(out);
        [[maybe_unused]] ssize_t w = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        doomed.push_back(fd);
      } else if (idle && now - c->last_active.load(std::memory_order_relaxed) > idle_ns) {
        idle_closes.fetch_add(1, std::memory_order_relaxed);
        doomed.push_back(fd);
      } else {
        release(c.get());
      }
    }
    for (int fd : doomed) close_conn(l, fd);
  }
  void on_acceptable() {
    for (int i = 0; i < kAcceptBatch; i++) {
      sockaddr_storage peer{};
      socklen_t plen = sizeof peer;
      int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: stop listening a while instead of spinning on a listener that
          // stays readable (level-triggered); say so at most once a second.
          int err = errno;
          auto now = Clock::now();
          if (now - last_accept_log >= std::chrono::seconds(1)) {
            std::fprintf(stderr, "mpg http (hybrid): accept: %s; pausing %lld ms (%llu similar messages suppressed)\n",
                         std::strerror(err), static_cast<long long>(kAcceptPause.count()),
                         static_cast<unsigned long long>(accept_logs_suppressed));
            last_accept_log = now;
            accept_logs_suppressed = 0;
          } else {
            accept_logs_suppressed++;
          }
          listener->disable_reading();
          loops[0]->loop->run_after(kAcceptPause, [this] {
            if (listener && !draining.load()) listener->enable_reading();
          });
        }
        return;
      }
      accepted.fetch_add(1, std::memory_order_relaxed);
      if (opt.on_open && !opt.on_open()) {
        ::close(fd);  // refused by the connection limit
        continue;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      open.fetch_add(1, std::memory_order_relaxed);
      Loop* l = loops[next_loop++ % loops.size()].get();
      std::string ip = detail::peer_ip(peer);
      if (l == loops[0].get()) add_conn(l, fd, std::move(ip));
      else l->loop->queue_in_loop([this, l, fd, ip = std::move(ip)]() mutable { add_conn(l, fd, std::move(ip)); });
    }
  }

  // --- goroutine side ---
  bool write_all(Conn* c, const std::string& out) {
    const char* p = out.data();
    std::size_t n = out.size(), done = 0;
    while (done < n) {
      ssize_t k = ::send(c->fd, p + done, n - done, MSG_NOSIGNAL);
      if (k >= 0) {
        done += std::size_t(k);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return false;
      // Ask the loop for the next writable edge, then try once more: the edge may have come
      // between the EAGAIN and the request.
      if (!c->writable) c->writable = std::make_unique<mpg::Chan<char>>(1);
      c->want_write.store(true, std::memory_order_release);
      k = ::send(c->fd, p + done, n - done, MSG_NOSIGNAL);
      if (k >= 0) {
        if (!c->want_write.exchange(false, std::memory_order_acq_rel)) c->writable->try_recv();
        done += std::size_t(k);
        continue;
      }
      if (errno != EAGAIN && errno != EINTR) return false;
      c->writable->recv();
    }
    return true;
  }
  void finish(Conn* c) {
    // The state word stays kRunning/kNotified: the loop never spawns for it again.
    Loop* l = c->loop;
    int fd = c->fd;
    l->loop->queue_in_loop([this, l, fd] { close_conn(l, fd); });
  }
  void run(Conn* c) {
    detail::IoBufs* b = detail::take_bufs();  // this burst's read buffer and responses
    char* buf = b->in;
    std::string& out = b->out;
    run_burst(c, buf, out);
    detail::give_bufs(b, opt.limits.retain_bytes);
  }
  void run_burst(Conn* c, char* buf, std::string& out) {
    for (;;) {
      bool close = false;
      for (;;) {
        ssize_t k = ::read(c->fd, buf, detail::kReadBytes);
        // A short read emptied the socket: stop here instead of making a read that would only
        // say EAGAIN. Data that comes later raises a new edge (the loop notifies); a FIN already
        // queued behind the data does not, so not once the loop has seen one (hup).
        bool drained = k > 0 && std::size_t(k) < detail::kReadBytes && !c->hup.load(std::memory_order_acquire);
        if (k > 0) {
          SessionStatus st = c->sess.on_data(std::string_view(buf, std::size_t(k)), out);
          if (!out.empty()) {
            if (!write_all(c, out)) {
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
      if (close || (draining.load(std::memory_order_acquire) && c->sess.idle())) {
        finish(c);
        return;
      }
      c->last_active.store(now_ns(), std::memory_order_relaxed);
      int s = kRunning;
      if (c->state.compare_exchange_strong(s, kIdle, std::memory_order_acq_rel)) return;
      c->state.store(kRunning, std::memory_order_release);  // notified meanwhile: again
    }
  }

  void on_all_loops(const std::function<void(Loop*)>& f) {
    for (auto& l : loops) {
      Loop* lp = l.get();
      lp->loop->queue_in_loop([f, lp] { f(lp); });
    }
  }
};

HybridServer::HybridServer(Handler handler, ServerOptions opt) : impl_(new Impl) {
  impl_->handler = std::move(handler);
  impl_->opt = std::move(opt);
}

HybridServer::~HybridServer() {
  // Not shut down (an error path): stop the loops so their threads can be joined.
  for (auto& l : impl_->loops)
    if (l->thread.joinable()) {
      l->loop->stop();
      l->thread.join();
    }
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
  // The loops spawn goroutines from threads the runtime does not know: while they run, an
  // all-idle runtime is waiting for them, not deadlocked.
  mpg::detail::sched->external_refs.fetch_add(1, std::memory_order_acq_rel);
  int n = im->opt.loops > 0 ? im->opt.loops : 1;
  for (int i = 0; i < n; i++) {
    // The Loop is in place before its thread starts, and the thread writes its EventLoop's
    // address before the promise: nothing the thread reads is written after it started.
    im->loops.push_back(std::make_unique<Impl::Loop>());
    Impl::Loop* lp = im->loops.back().get();
    std::promise<void> ready;
    auto fut = ready.get_future();
    lp->thread = std::thread([&ready, im, lp] {
      reactor::EventLoop loop;
      lp->loop = &loop;
      loop.run_every(kSweepEvery, [im, lp] { im->sweep(lp, false); });
      loop.set_before_wait([lp] { lp->batch.flush(); });
      ready.set_value();
      loop.run();
      lp->conns.clear();  // handlers go while their loop still exists
    });
    fut.get();
  }
  std::promise<void> listening;
  im->loops[0]->loop->queue_in_loop([im, &listening] {
    im->listener = std::make_unique<reactor::Handler>(*im->loops[0]->loop, im->listen_fd);
    im->listener->on_readable([im] { im->on_acceptable(); });
    im->listener->enable_reading();
    listening.set_value();
  });
  mpg::blocking([&] { listening.get_future().wait(); });
}

std::uint16_t HybridServer::port() const { return impl_->port; }

void HybridServer::shutdown(std::chrono::milliseconds grace) {
  Impl* im = impl_.get();
  if (im->loops.empty() || im->draining.exchange(true)) return;
  im->loops[0]->loop->queue_in_loop([im] {
    im->listener->remove();
    im->listener.reset();
    ::close(im->listen_fd);
  });
  auto until = Clock::now() + grace;
  while (im->open.load(std::memory_order_acquire) > 0 && Clock::now() < until) {
    im->on_all_loops([im](Impl::Loop* l) { im->sweep(l, false); });
    mpg::sleep_for(kDrainPoll);
  }
  auto hard = Clock::now() + std::chrono::seconds(2);
  while (im->open.load(std::memory_order_acquire) > 0 && Clock::now() < hard) {
    im->on_all_loops([im](Impl::Loop* l) { im->sweep(l, true); });
    mpg::sleep_for(kDrainPoll);
  }
  for (auto& l : im->loops) l->loop->stop();
  mpg::blocking([&] {
    for (auto& l : im->loops) l->thread.join();
  });
  // The loops are gone, so nothing spawns any more; wait for the goroutines already spawned.
  // (Every one of them has closed its connection or been shut down by the forced sweep above,
  // so each is at most a few steps from its end; the bound only guards against a bug.)
  auto last = Clock::now() + std::chrono::seconds(5);
  while (im->running.load(std::memory_order_acquire) > 0 && Clock::now() < last)
    mpg::sleep_for(std::chrono::milliseconds(1));
  mpg::detail::sched->external_refs.fetch_sub(1, std::memory_order_acq_rel);
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
