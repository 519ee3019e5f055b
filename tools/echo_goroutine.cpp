// echo_goroutine: a TCP echo server with one goroutine per connection on mpg's netpoller, the
// goroutine side of bench/echo.
//
//   echo_goroutine [--host 127.0.0.1] [--port 0] [--procs 0] [--pin] [--pool]
//
// By default each connection owns a 64 KiB buffer for its life, as Go's go_echo does. --pool is
// mpg's way, as its HTTP servers do: the goroutine waits for data holding no buffer
// (Conn::wait_readable) and borrows one from its thread's pool for the read and the echo. The
// benchmark runs both (docs/net.md, "Buffers borrowed while there is data").
//
// Prints "listening <port>" on stdout once it accepts; exits on SIGINT/SIGTERM.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "mpg/mpg.hpp"
#include "mpg/net.hpp"

namespace {

// kBufBytes: the read buffer, as go_echo's (64 KiB drains a socket in one read).
constexpr std::size_t kBufBytes = 64 * 1024;

// serve_owned: Go's way, a buffer per connection for the connection's life.
void serve_owned(mpg::net::Conn c) {
  std::unique_ptr<char[]> buf(new char[kBufBytes]);
  for (;;) {
    auto r = c.read(buf.get(), kBufBytes);
    if (r.n > 0 && c.write(buf.get(), r.n).err) break;
    if (r.err) break;
  }
  c.close();
}

// Buffers borrowed only while a connection has data (--pool), from a pool per thread; the last
// one given back is the next one taken, still in cache. noinline: a goroutine may be on another
// thread by its next call, so the thread_local's address must not be cached across a switch.
// NoPreempt: a goroutine stopped by a preemption signal inside the pool's vector keeps its
// thread, but others run on that thread first and would find the vector half-changed.
// kPoolMax: buffers kept per thread (the rest are freed), as mpg's HTTP servers keep IoBufs.
constexpr std::size_t kPoolMax = 16;
struct BufPool {
  std::vector<char*> free;
  ~BufPool() {
    for (char* b : free) delete[] b;
  }
};
__attribute__((noinline)) BufPool& buf_pool() {
  thread_local BufPool p;
  return p;
}
char* take_buf() {
  mpg::NoPreempt np;
  BufPool& p = buf_pool();
  if (p.free.empty()) return new char[kBufBytes];
  char* b = p.free.back();
  p.free.pop_back();
  return b;
}
void give_buf(char* b) {
  mpg::NoPreempt np;
  BufPool& p = buf_pool();
  if (p.free.size() >= kPoolMax) {
    delete[] b;
    return;
  }
  p.free.push_back(b);
}

// serve_pooled: waits for data holding no buffer (Conn::wait_readable, which Go's net.Conn has
// no counterpart for), then borrows one for the read and the echo.
void serve_pooled(mpg::net::Conn c) {
  for (;;) {
    if (c.wait_readable()) break;
    char* buf = take_buf();
    auto r = c.read(buf, kBufBytes);
    bool stop = r.err || c.write(buf, r.n).err;
    give_buf(buf);
    if (stop) break;
  }
  c.close();
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0;
  mpg::Config cfg;
  CLI::App app{"TCP echo server, a goroutine per connection on the mpg netpoller"};
  app.add_option("--host", host, "address to listen on");
  app.add_option("--port", port, "port (0: any; the chosen one is printed)");
  app.add_option("--procs", cfg.procs, "Ps (0: one per CPU)");
  app.add_flag("--pin", cfg.pin_procs, "pin each P's thread to a CPU");
  bool pooled = false;
  app.add_flag("--pool", pooled, "borrow a read buffer only while a connection has data");
  CLI11_PARSE(app, argc, argv);

  // The stop signals are blocked in every thread (the runtime's threads inherit the mask); the
  // main goroutine takes them with sigwait inside mpg::blocking.
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);

  return mpg::run([&]() -> int {
    std::string addr = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    auto [ln, err] = mpg::net::listen("tcp", addr + ":" + std::to_string(port));
    if (err) {
      std::fprintf(stderr, "echo_goroutine: listen: %s\n", err.message().c_str());
      return 1;
    }
    std::printf("listening %d\n", ln.addr().port());
    std::fflush(stdout);
    auto accepted = std::make_shared<std::atomic<std::uint64_t>>(0);
    mpg::go([ln = ln, accepted, pooled]() mutable {
      for (;;) {
        auto [c, aerr] = ln.accept();
        if (aerr) {
          if (aerr.code == mpg::net::Errc::Closed) return;
          continue;  // a reset while queued: keep accepting
        }
        accepted->fetch_add(1, std::memory_order_relaxed);
        mpg::go([c = std::move(c), pooled]() mutable {
          if (pooled) serve_pooled(std::move(c));
          else serve_owned(std::move(c));
        });
      }
    });
    int sig = 0;
    mpg::blocking([&] { return sigwait(&stop_set, &sig); });
    ln.close();
    std::fprintf(stderr, "echo_goroutine: accepted %llu\n", static_cast<unsigned long long>(accepted->load()));
    return 0;
  }, cfg);
}
