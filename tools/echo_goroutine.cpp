// echo_goroutine: a TCP echo server with one goroutine per connection on mpg's netpoller, the
// goroutine side of bench/echo (Go's go_echo, written the same way in C++).
//
//   echo_goroutine [--host 127.0.0.1] [--port 0] [--procs 0] [--pin]
//
// Prints "listening <port>" on stdout once it accepts; exits on SIGINT/SIGTERM.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>

#include "mpg/mpg.hpp"
#include "mpg/net.hpp"

namespace {

// kBufBytes: each connection's read buffer, as go_echo's (64 KiB drains a socket in one read).
constexpr std::size_t kBufBytes = 64 * 1024;

void serve(mpg::net::Conn c) {
  std::unique_ptr<char[]> buf(new char[kBufBytes]);
  for (;;) {
    auto r = c.read(buf.get(), kBufBytes);
    if (r.n > 0 && c.write(buf.get(), r.n).err) break;
    if (r.err) break;
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
    mpg::go([ln = ln, accepted]() mutable {
      for (;;) {
        auto [c, aerr] = ln.accept();
        if (aerr) {
          if (aerr.code == mpg::net::Errc::Closed) return;
          continue;  // a reset while queued: keep accepting
        }
        accepted->fetch_add(1, std::memory_order_relaxed);
        mpg::go([c = std::move(c)]() mutable { serve(std::move(c)); });
      }
    });
    int sig = 0;
    mpg::blocking([&] { return sigwait(&stop_set, &sig); });
    ln.close();
    std::fprintf(stderr, "echo_goroutine: accepted %llu\n", static_cast<unsigned long long>(accepted->load()));
    return 0;
  }, cfg);
}
