// server_goroutine.cpp: GoroutineServer, a goroutine per connection on mpg::net (server.hpp).
//
// Each connection's goroutine loops: wait until the socket is readable (Conn::wait_readable,
// which holds no buffer), take a 4 KiB read buffer and an output string from a per-thread pool,
// read, feed the session, write what it produced in one write, give the buffers back, until the
// session says close or the peer leaves. So an idle connection is a goroutine parked with a
// small stack (one page) and a session shell, nothing more. The
// header deadline and the keep-alive idle timeout are the Conn's read deadline; it is moved only
// when the wanted deadline is earlier, or more than a second later, than the one set, so a
// request that arrives in one read costs no timer operation at all.
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/io_bufs.hpp"
#include "http/peer_ip.hpp"
#include "mpg/http/server.hpp"
#include "mpg/http/session.hpp"
#include "mpg/mpg.hpp"
#include "mpg/net.hpp"
#include "runtime/platform.hpp"

namespace mpg::http {

using detail::IoBufs;
using detail::give_bufs;
using detail::take_bufs;

namespace {
// kDeadlineSlack: a read deadline later than wanted by up to this much is left as it is.
constexpr auto kDeadlineSlack = std::chrono::seconds(1);
// kDrainPoll: how often shutdown looks whether the busy connections have finished.
constexpr auto kDrainPoll = std::chrono::milliseconds(5);

// coarse_now: steady_clock's time (CLOCK_MONOTONIC) as of the kernel's last tick: ~5 ns to read
// instead of ~25, once per request, for an idle deadline that may already be a second late
// (kDeadlineSlack); it comes at most a tick (a few ms) early.
net::Clock::time_point coarse_now() {
  return net::Clock::time_point(std::chrono::nanoseconds(mpg::detail::coarse_nanotime()));
}
}  // namespace

const char* model_name(Model m) {
  switch (m) {
    case Model::Goroutine: return "goroutine";
    case Model::Reactor: return "reactor";
    case Model::Hybrid: return "hybrid";
  }
  return "?";
}

bool parse_model(std::string_view s, Model* out) {
  for (Model m : {Model::Goroutine, Model::Reactor, Model::Hybrid})
    if (s == model_name(m)) {
      *out = m;
      return true;
    }
  return false;
}

struct GoroutineServer::Impl {
  Handler handler;
  ServerOptions opt;
  net::Listener ln;
  std::uint16_t port = 0;
  struct Entry {
    net::Conn conn;
    std::atomic<bool> idle{true};  // between requests (shutdown may close it)
  };
  mpg::Mutex mu;
  std::unordered_map<std::uint64_t, Entry*> conns;  // (mu)
  std::uint64_t next_id = 0;                         // (mu)
  mpg::WaitGroup wg;                                 // the acceptor and every connection
  std::atomic<bool> draining{false};
  std::atomic<std::uint64_t> accepted{0}, open{0}, header_timeouts{0}, idle_closes{0};

  void serve(net::Conn c);
  void close_idle() {
    std::lock_guard<mpg::Mutex> lk(mu);
    for (auto& [id, e] : conns)
      if (e->idle.load(std::memory_order_acquire)) e->conn.close();
  }
  void close_all() {
    std::lock_guard<mpg::Mutex> lk(mu);
    for (auto& [id, e] : conns) e->conn.close();
  }
};

void GoroutineServer::Impl::serve(net::Conn c) {
  Entry e;
  e.conn = c;
  std::uint64_t id;
  {
    std::lock_guard<mpg::Mutex> lk(mu);
    id = next_id++;
    conns.emplace(id, &e);
  }
  ServerSession sess(handler, opt.limits);
  const std::string ip = detail::peer_ip(c.remote_addr().ss);  // fits the string's own buffer (IPv4)
  sess.set_remote_ip(ip);
  net::Clock::time_point deadline{};
  // finish_timeout: the read (or wait) timed out: 408 if a header was pending, else idle.
  auto finish_timeout = [&] {
    if (sess.header_pending()) {
      header_timeouts.fetch_add(1, std::memory_order_relaxed);
      std::string out;
      sess.on_header_timeout(out);
      c.write(out);
    } else if (sess.idle()) {
      idle_closes.fetch_add(1, std::memory_order_relaxed);
    }
  };
  for (;;) {
    bool idle = sess.idle();
    if (idle && draining.load(std::memory_order_acquire)) break;
    net::Clock::time_point want = sess.header_pending() ? sess.header_deadline()
                                                         : coarse_now() + opt.limits.idle_timeout;
    if (want < deadline || want > deadline + kDeadlineSlack) {
      c.set_read_deadline(want);
      deadline = want;
    }
    e.idle.store(idle, std::memory_order_release);
    net::Error werr = c.wait_readable();
    e.idle.store(false, std::memory_order_release);
    if (werr) {
      if (werr.timeout()) finish_timeout();
      break;
    }
    IoBufs* b = take_bufs();
    auto r = c.read(b->in, sizeof b->in);
    bool stop = false;
    if (r.err) {
      if (r.err.timeout()) finish_timeout();
      stop = true;
    } else {
      SessionStatus st = sess.on_data(std::string_view(b->in, r.n), b->out);
      if (!b->out.empty() && c.write(b->out).err) stop = true;
      if (st == SessionStatus::kCloseAfterWrite) stop = true;
    }
    give_bufs(b, opt.limits.retain_bytes);
    if (stop) break;
  }
  c.close();
  {
    std::lock_guard<mpg::Mutex> lk(mu);
    conns.erase(id);
  }
  open.fetch_sub(1, std::memory_order_relaxed);
  if (opt.on_close) opt.on_close();
}

GoroutineServer::GoroutineServer(Handler handler, ServerOptions opt) : impl_(new Impl) {
  impl_->handler = std::move(handler);
  impl_->opt = std::move(opt);
}

GoroutineServer::~GoroutineServer() = default;

void GoroutineServer::start() {
  Impl* im = impl_.get();
  std::string host = im->opt.host.find(':') != std::string::npos ? "[" + im->opt.host + "]" : im->opt.host;
  auto [ln, err] = net::listen("tcp", host + ":" + std::to_string(im->opt.port));
  if (err) throw std::runtime_error("GoroutineServer: listen " + host + ": " + err.message());
  im->ln = ln;
  im->port = std::uint16_t(ln.addr().port());
  im->wg.add(1);
  mpg::go([im] {
    for (;;) {
      auto [c, aerr] = im->ln.accept();
      if (aerr) {
        if (aerr.code == net::Errc::Closed) break;
        continue;  // a connection reset while queued
      }
      im->accepted.fetch_add(1, std::memory_order_relaxed);
      if (im->opt.on_open && !im->opt.on_open()) {
        c.close();  // refused by the connection limit
        continue;
      }
      im->open.fetch_add(1, std::memory_order_relaxed);
      im->wg.add(1);
      mpg::go([im, c = std::move(c)]() mutable {
        im->serve(std::move(c));
        im->wg.done();
      });
    }
    im->wg.done();
  });
}

std::uint16_t GoroutineServer::port() const { return impl_->port; }

void GoroutineServer::shutdown(std::chrono::milliseconds grace) {
  Impl* im = impl_.get();
  if (im->draining.exchange(true)) return;
  im->ln.close();
  auto until = std::chrono::steady_clock::now() + grace;
  // Idle connections close at once; busy ones close themselves after their response. Keep
  // closing the idle ones: a connection between two requests is idle only for a moment.
  while (im->open.load(std::memory_order_acquire) > 0 && std::chrono::steady_clock::now() < until) {
    im->close_idle();
    mpg::sleep_for(kDrainPoll);
  }
  im->close_all();
  im->wg.wait();
}

ServerStats GoroutineServer::stats() const {
  ServerStats s;
  s.accepted = impl_->accepted.load(std::memory_order_relaxed);
  s.open = impl_->open.load(std::memory_order_relaxed);
  s.header_timeouts = impl_->header_timeouts.load(std::memory_order_relaxed);
  s.idle_closes = impl_->idle_closes.load(std::memory_order_relaxed);
  return s;
}

}  // namespace mpg::http
