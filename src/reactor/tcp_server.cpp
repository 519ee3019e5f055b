// tcp_server.cpp: listening, dealing connections to loops, and the graceful stop.
//
// Graceful stop, in order (shutdown()):
//   1. Every acceptor closes its listener on its own loop; new connections are refused.
//   2. Every worker drains its connections on its loop: no more reads, the output queue is
//      written, then FIN, then the peer's FIN closes it (Connection::shutdown).
//   3. The caller waits until every worker's table is empty or the deadline passes.
//   4. Every worker force-closes whatever is left on its loop.
//   5. Every loop stops; run() drains the task queue once more (cross-thread sends and
//      hand-offs queued before the stop still run), then the loop thread destroys its
//      acceptor and connections and exits.
// Each step waits for the loops to finish the previous one (run_sync), so no step races the
// next; output queued before step 2 is never lost, only output still unwritten at step 4.
#include "mpg/reactor/tcp_server.hpp"

#include <future>
#include <memory>
#include <system_error>
#include <thread>
#include <vector>

#include "reactor/acceptor.hpp"
#include "reactor/loop_thread.hpp"
#include "reactor/socket.hpp"
#include "reactor/worker.hpp"

namespace mpg::reactor {

using detail::Acceptor;
using detail::LoopThread;
using detail::Worker;

// Impl: the server's loops, workers and acceptors; owned by TcpServer. Each acceptor and each
// worker's table is touched only on its loop; the vectors themselves are fixed by start().
struct TcpServer::Impl {
  ServerConfig cfg;
  ServerCallbacks cb;
  detail::Counters counters;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::unique_ptr<Acceptor>> acceptors;  // [0]: the main loop's, or one per worker
  LoopThread main;
  std::vector<std::unique_ptr<LoopThread>> threads;
  std::atomic<std::uint64_t> next_id{1};
  std::size_t next_worker = 0;  // main loop only
  std::uint16_t port = 0;
  bool running = false;

  // run_sync: runs fn on `loop` and waits for it. The promise is owned by the task, not by this
  // frame: set_value() may still be unwinding on the loop thread when wait() returns here.
  static void run_sync(EventLoop& loop, std::function<void()> fn) {
    auto done = std::make_shared<std::promise<void>>();
    auto f = done->get_future();
    loop.queue_in_loop([done, &fn] {
      fn();
      done->set_value();
    });
    f.wait();
  }
  void deal(poll::UniqueFd fd, const sockaddr_storage& peer) {
    Worker* w = workers[next_worker++ % workers.size()].get();
    std::uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed);
    if (w->loop().in_loop_thread()) {
      w->adopt(std::move(fd), peer, id);
      return;
    }
    // std::function needs a copyable closure, so the descriptor travels as an int; the final
    // drain of step 5 guarantees the task runs and re-wraps it.
    int raw = fd.release();
    w->loop().queue_in_loop([w, raw, peer, id] { w->adopt(poll::UniqueFd(raw), peer, id); });
  }
};

TcpServer::TcpServer(ServerConfig config, ServerCallbacks callbacks) : impl_(std::make_unique<Impl>()) {
  impl_->cfg = std::move(config);
  if (impl_->cfg.read_budget == 0) impl_->cfg.read_budget = 1;  // a read of 0 bytes would look like EOF
  impl_->cb = std::move(callbacks);
}

TcpServer::~TcpServer() {
  if (impl_->running) shutdown(std::chrono::milliseconds(0));
}

void TcpServer::start() {
  Impl& m = *impl_;
  const ServerConfig& cfg = m.cfg;
  int nworkers = cfg.loops < 1 ? 1 : cfg.loops;
  bool own_threads = cfg.loops >= 1;
  bool reuse = cfg.reuse_port && own_threads;
  for (int i = 0; i < nworkers; i++) m.workers.push_back(std::make_unique<Worker>(m.cfg, m.cb, m.counters));
  m.acceptors.resize(reuse ? static_cast<std::size_t>(nworkers) : 1);

  std::vector<poll::UniqueFd> listeners;
  listeners.push_back(detail::make_listener(cfg.host, cfg.port, reuse, cfg.backlog));
  m.port = detail::local_port(listeners[0].get());
  if (reuse) {
    for (int i = 1; i < nworkers; i++) listeners.push_back(detail::make_listener(cfg.host, m.port, true, cfg.backlog));
  }

  auto cpu_of = [&](int i) { return cfg.cpus.empty() ? -1 : cfg.cpus[static_cast<std::size_t>(i) % cfg.cpus.size()]; };
  if (own_threads) {
    for (int i = 0; i < nworkers; i++) {
      Worker* w = m.workers[static_cast<std::size_t>(i)].get();
      auto t = std::make_unique<LoopThread>();
      std::unique_ptr<Acceptor>* slot = reuse ? &m.acceptors[static_cast<std::size_t>(i)] : nullptr;
      poll::UniqueFd lfd = reuse ? std::move(listeners[static_cast<std::size_t>(i)]) : poll::UniqueFd();
      auto lfd_raw = lfd.release();
      t->start(
          [w, slot, lfd_raw, &m](EventLoop& loop) {
            w->attach(loop);
            if (slot) {
              *slot = std::make_unique<Acceptor>(loop, poll::UniqueFd(lfd_raw), m.cfg, m.counters,
                  [w, &m](poll::UniqueFd fd, const sockaddr_storage& peer) {
                    w->adopt(std::move(fd), peer, m.next_id.fetch_add(1, std::memory_order_relaxed));
                  });
              (*slot)->start();
            }
          },
          [w, slot](EventLoop&) {
            if (slot) slot->reset();
            w->detach();
          },
          cpu_of(i));
      m.threads.push_back(std::move(t));
    }
  }
  int main_lfd = reuse ? -1 : listeners[0].release();
  Worker* inline_worker = own_threads ? nullptr : m.workers[0].get();
  m.main.start(
      [&m, main_lfd, inline_worker](EventLoop& loop) {
        if (inline_worker) inline_worker->attach(loop);
        if (main_lfd >= 0) {
          m.acceptors[0] = std::make_unique<Acceptor>(loop, poll::UniqueFd(main_lfd), m.cfg, m.counters,
              [&m](poll::UniqueFd fd, const sockaddr_storage& peer) { m.deal(std::move(fd), peer); });
          m.acceptors[0]->start();
        }
      },
      [&m, reuse, inline_worker](EventLoop&) {
        if (!reuse) m.acceptors[0].reset();
        if (inline_worker) inline_worker->detach();
      },
      own_threads ? -1 : cpu_of(0));
  m.running = true;
}

std::uint16_t TcpServer::port() const { return impl_->port; }

void TcpServer::shutdown(std::chrono::milliseconds deadline) {
  Impl& m = *impl_;
  if (!m.running) return;
  auto until = std::chrono::steady_clock::now() + deadline;
  bool reuse = m.acceptors.size() > 1 || (m.cfg.reuse_port && m.cfg.loops >= 1);
  // Step 1.
  for (std::size_t i = 0; i < m.acceptors.size(); i++) {
    EventLoop& loop = reuse ? m.workers[i]->loop() : m.main.loop();
    Impl::run_sync(loop, [&m, i] {
      if (m.acceptors[i]) m.acceptors[i]->close();
    });
  }
  // Step 2. Hand-offs queued by the acceptor before step 1 ran are adopted first (FIFO).
  for (auto& w : m.workers) Impl::run_sync(w->loop(), [&w] { w->drain_all(); });
  // Step 3.
  for (;;) {
    std::size_t open = 0;
    for (auto& w : m.workers) open += w->open();
    if (open == 0 || std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Step 4.
  for (auto& w : m.workers) Impl::run_sync(w->loop(), [&w] { w->close_all(); });
  // Step 5: the main loop first, so it hands nothing more to the workers.
  m.main.stop();
  for (auto& t : m.threads) t->stop();
  m.running = false;
}

void TcpServer::for_each_connection(std::function<void(Connection&)> fn) {
  Impl& m = *impl_;
  if (!m.running) return;
  auto shared = std::make_shared<std::function<void(Connection&)>>(std::move(fn));
  for (auto& w : m.workers) {
    detail::Worker* wp = w.get();
    wp->loop().queue_in_loop([wp, shared] { wp->for_each(*shared); });
  }
}

ServerStats TcpServer::stats() const {
  const detail::Counters& c = impl_->counters;
  auto ld = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  ServerStats s;
  s.accepted = ld(c.accepted);
  s.closed = ld(c.closed);
  s.open = s.accepted - s.closed;
  s.accept_fd_exhausted = ld(c.accept_fd_exhausted);
  s.accept_calls = ld(c.accept_calls);
  s.log_lines = ld(c.log_lines);
  s.high_water_pauses = ld(c.high_water_pauses);
  s.hard_cap_closes = ld(c.hard_cap_closes);
  s.idle_closes = ld(c.idle_closes);
  return s;
}

}  // namespace mpg::reactor
