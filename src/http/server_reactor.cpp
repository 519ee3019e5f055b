// server_reactor.cpp: ReactorServer, the HTTP core on mpg::reactor's TcpServer (server.hpp).
//
// Each connection's context holds its ServerSession. on_message feeds the whole input Buffer to
// the session (which copies only what it must keep: a header split across reads, a body) and
// queues every response the read produced as one send. The keep-alive idle timeout is the
// reactor's timing wheel (no input for idle_timeout: close); the header deadline is a loop timer
// armed only when a header spans reads, which a well-behaved client's requests never do.
#include <memory>

#include "http/peer_ip.hpp"
#include "mpg/http/server.hpp"
#include "mpg/http/session.hpp"
#include "mpg/reactor/buffer.hpp"
#include "mpg/reactor/connection.hpp"
#include "mpg/reactor/event_loop.hpp"
#include "mpg/reactor/tcp_server.hpp"

namespace mpg::http {

namespace {

struct ConnCtx {
  ConnCtx(const Handler& h, const Limits& l, std::string peer) : sess(h, l), ip(std::move(peer)) {
    sess.set_remote_ip(ip);
  }
  ServerSession sess;
  const std::string ip;
  bool admitted = false;  // on_open said yes: on_close is owed
  bool timer_armed = false;
};

// loop_out: the responses of one on_message, reused by every connection of the loop thread
// (send() copies them into the connection's output queue).
std::string& loop_out() {
  thread_local std::string out;
  return out;
}

}  // namespace

struct ReactorServer::Impl {
  Handler handler;
  ServerOptions opt;
  std::unique_ptr<reactor::TcpServer> server;
  std::atomic<std::uint64_t> header_timeouts{0};
  std::atomic<bool> draining{false};

  // close_idle: shutdown closes the idle keep-alive connections at once (TcpServer's own
  // shutdown waits for connections to end, and an idle one never would), each on its loop.
  // No table of our own: a map entry per connection cost memory on every one, idle or not.
  void close_idle() {
    server->for_each_connection([](reactor::Connection& c) {
      auto* ctx = std::any_cast<std::shared_ptr<ConnCtx>>(&c.context());
      if (ctx && *ctx && (*ctx)->sess.idle()) c.shutdown();
    });
  }

  void arm_header_timer(reactor::Connection& c, const std::shared_ptr<ConnCtx>& ctx) {
    ctx->timer_armed = true;
    auto delay = ctx->sess.header_deadline() - ServerSession::Clock::now();
    std::weak_ptr<ConnCtx> weak = ctx;
    reactor::ConnHandle h = c.handle();
    c.loop().run_after(std::chrono::duration_cast<std::chrono::nanoseconds>(delay), [this, weak, h] {
      auto ctx = weak.lock();
      if (!ctx) return;  // the connection is gone
      ctx->timer_armed = false;
      if (!ctx->sess.header_pending() || ctx->sess.closed()) return;
      if (ServerSession::Clock::now() < ctx->sess.header_deadline()) {
        // A later request's header is pending now: its own deadline. (Rare: needs a request
        // whose header spans reads right after another such request.)
        return;
      }
      header_timeouts.fetch_add(1, std::memory_order_relaxed);
      std::string out;
      ctx->sess.on_header_timeout(out);
      h.send(std::move(out));
      h.shutdown();
    });
  }
};

ReactorServer::ReactorServer(Handler handler, ServerOptions opt) : impl_(new Impl) {
  impl_->handler = std::move(handler);
  impl_->opt = std::move(opt);
}

ReactorServer::~ReactorServer() {
  if (impl_->server) impl_->server->shutdown(std::chrono::milliseconds(0));
}

void ReactorServer::start() {
  Impl* im = impl_.get();
  reactor::ServerConfig cfg;
  cfg.host = im->opt.host;
  cfg.port = im->opt.port;
  cfg.loops = im->opt.loops;
  cfg.reuse_port = im->opt.reuse_port;
  cfg.idle_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(im->opt.limits.idle_timeout);
  reactor::ServerCallbacks cb;
  cb.on_connection = [im](reactor::Connection& c) {
    auto ctx = std::make_shared<ConnCtx>(im->handler, im->opt.limits, detail::peer_ip(c.peer()));
    c.set_user_data(ctx.get());  // on_message's way in; the any owns it (and the timer's weak_ptr)
    c.context() = ctx;
    if (im->opt.on_open && !im->opt.on_open()) {
      c.force_close();  // refused by the connection limit
      return;
    }
    ctx->admitted = true;
  };
  cb.on_close = [im](reactor::Connection& c) {
    auto* ctx = std::any_cast<std::shared_ptr<ConnCtx>>(&c.context());
    if (ctx && *ctx && (*ctx)->admitted && im->opt.on_close) im->opt.on_close();
  };
  cb.on_message = [im](reactor::Connection& c, reactor::Buffer& in) {
    auto* ctx = static_cast<ConnCtx*>(c.user_data());
    if (ctx->sess.closed()) {
      in.retrieve_all();
      return;
    }
    std::string& out = loop_out();
    SessionStatus st = ctx->sess.on_data(in.view(), out);
    in.retrieve_all();
    if (!out.empty()) {
      c.send(out);
      out.clear();
      if (out.capacity() > im->opt.limits.retain_bytes) std::string().swap(out);
    }
    if (st == SessionStatus::kCloseAfterWrite) c.shutdown();
    else if (im->draining.load(std::memory_order_relaxed) && ctx->sess.idle()) c.shutdown();
    else if (ctx->sess.header_pending() && !ctx->timer_armed)
      im->arm_header_timer(c, std::any_cast<std::shared_ptr<ConnCtx>&>(c.context()));
  };
  im->server = std::make_unique<reactor::TcpServer>(cfg, cb);
  im->server->start();
}

std::uint16_t ReactorServer::port() const { return impl_->server ? impl_->server->port() : 0; }

void ReactorServer::shutdown(std::chrono::milliseconds grace) {
  if (!impl_->server || impl_->draining.exchange(true)) return;
  impl_->close_idle();
  impl_->server->shutdown(grace);
}

ServerStats ReactorServer::stats() const {
  ServerStats s;
  if (!impl_->server) return s;
  auto r = impl_->server->stats();
  s.accepted = r.accepted;
  s.open = r.open;
  s.idle_closes = r.idle_closes;
  s.header_timeouts = impl_->header_timeouts.load(std::memory_order_relaxed);
  return s;
}

}  // namespace mpg::http
