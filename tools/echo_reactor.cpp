// echo_reactor: a TCP echo server on mpg's Reactor, the server side of bench/echo.
//
//   echo_reactor [--host 127.0.0.1] [--port 0] [--loops 1] [--reuse-port] [--edge]
//                [--pin 0,1] [--idle-ms 0]
//
// Prints "listening <port>" on stdout once it accepts, and stops gracefully on SIGINT/SIGTERM.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "mpg/reactor/buffer.hpp"
#include "mpg/reactor/connection.hpp"
#include "mpg/reactor/tcp_server.hpp"

int main(int argc, char** argv) {
  mpg::reactor::ServerConfig cfg;
  int idle_ms = 0;
  CLI::App app{"TCP echo server on the mpg Reactor"};
  app.add_option("--host", cfg.host, "numeric address to listen on");
  app.add_option("--port", cfg.port, "port (0: any; the chosen one is printed)");
  app.add_option("--loops", cfg.loops, "worker loops (0: the acceptor loop serves too)");
  app.add_flag("--reuse-port", cfg.reuse_port, "one SO_REUSEPORT listener per loop");
  app.add_flag("--edge", cfg.edge_triggered, "edge-triggered connections");
  app.add_option("--pin", cfg.cpus, "CPUs to pin worker loops to")->delimiter(',');
  app.add_option("--idle-ms", idle_ms, "close connections idle this long (0: never)");
  CLI11_PARSE(app, argc, argv);
  cfg.idle_timeout = std::chrono::milliseconds(idle_ms);

  // Block the stop signals before any loop thread starts, so they inherit the mask and the
  // main thread alone receives them through sigwait.
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  mpg::reactor::ServerCallbacks cb;
  cb.on_message = [](mpg::reactor::Connection& c, mpg::reactor::Buffer& in) {
    c.send(in.view());
    in.retrieve_all();
  };
  mpg::reactor::TcpServer server(cfg, cb);
  try {
    server.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_reactor: %s\n", e.what());
    return 1;
  }
  std::printf("listening %u\n", static_cast<unsigned>(server.port()));
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop_set, &sig);
  server.shutdown(std::chrono::seconds(2));
  auto s = server.stats();
  std::fprintf(stderr, "echo_reactor: accepted %llu, closed %llu\n",
               static_cast<unsigned long long>(s.accepted), static_cast<unsigned long long>(s.closed));
  return 0;
}
