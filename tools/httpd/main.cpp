// mpg-httpd: the demo service, layered as the seed's Gateway (HTTP in: this file picks the
// concurrency model and owns the server), Processor (processor.hpp: the endpoints' logic) and
// Model (model.hpp: the key-value state). It runs unchanged on all three models:
//
//   mpg-httpd --model goroutine|reactor|hybrid [--listen 127.0.0.1:8080] [--procs N] [--loops N]
//             [--reuse-port] [--pin] [--kv sharded|actor] [--bare] [--rate R] [--client-rate R]
//             [--max-inflight 100] [--max-conns 16000]
//
// The production kit (docs/kit.md) wraps every handler unless --bare: a drain for graceful
// shutdown (outermost), Prometheus metrics (/metrics: http_requests_total{code,method,route} and
// http_request_duration_seconds{route}, the route being the pattern that matched, "/kv/{key}"
// for every key, "unmatched" for 404s and the like), the rate limits (off unless --rate or
// --client-rate; 429 with Retry-After) and the concurrency limit (the seed's 100; 503 with
// Retry-After), and the connection manager (a limit with an 80% alarm line and gauge).
// Prints "listening <port>" once it accepts, nothing per request, and on SIGINT/SIGTERM shuts
// down gracefully (stop accepting, finish requests in progress within 5 s) and exits 0.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "model.hpp"
#include "mpg/http/router.hpp"
#include "mpg/kit/concurrency_limiter.hpp"
#include "mpg/kit/connection_manager.hpp"
#include "mpg/kit/drain.hpp"
#include "mpg/kit/http_metrics.hpp"
#include "mpg/kit/rate_limiter.hpp"
#include "mpg/kit/registry.hpp"
#include "mpg/kit/scavenger.hpp"
#include "mpg/http/server.hpp"
#include "mpg/mpg.hpp"
#include "processor.hpp"

namespace {

constexpr auto kShutdownGrace = std::chrono::milliseconds(5000);
constexpr auto kScavengeEvery = std::chrono::seconds(1);

bool split_listen(const std::string& s, std::string* host, std::uint16_t* port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  *host = s.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[') *host = host->substr(1, host->size() - 2);
  try {
    int p = std::stoi(s.substr(colon + 1));
    if (p < 0 || p > 65535) return false;
    *port = std::uint16_t(p);
  } catch (...) {
    return false;
  }
  return true;
}

bool is_loopback(const std::string& host) { return host == "127.0.0.1" || host == "::1" || host == "localhost"; }

}  // namespace

int main(int argc, char** argv) {
  std::string model_s = "goroutine", listen = "127.0.0.1:8080", kv_s = "sharded";
  mpg::Config cfg;
  mpg::http::ServerOptions opt;
  opt.loops = 0;
  bool debug_public = false, bare = false;
  double rate = 0, client_rate = 0;
  std::size_t max_inflight = 100, max_conns = 16000;
  CLI::App app{"mpg-httpd: one HTTP service on three concurrency models"};
  app.add_option("--model", model_s, "goroutine | reactor | hybrid")->check(CLI::IsMember({"goroutine", "reactor", "hybrid"}));
  app.add_option("--listen", listen, "host:port (numeric host)");
  app.add_option("--procs", cfg.procs, "Ps of the goroutine runtime (0: one per CPU)");
  app.add_option("--loops", opt.loops, "reactor: worker event loops (default 2); the hybrid runs on the netpoller");
  app.add_flag("--reuse-port", opt.reuse_port, "reactor: one SO_REUSEPORT listener per loop");
  app.add_flag("--pin", cfg.pin_procs, "pin each P's thread to a CPU");
  app.add_option("--kv", kv_s, "key-value model: sharded (mutexes) | actor (one goroutine, a channel)")
      ->check(CLI::IsMember({"sharded", "actor"}));
  app.add_flag("--debug-public", debug_public, "serve /debug/* even when not listening on loopback");
  app.add_flag("--bare", bare, "no middleware (drain, metrics, limits) and no connection cap: the server alone");
  app.add_option("--rate", rate, "requests per second for the whole server (0: no limit)");
  app.add_option("--client-rate", client_rate, "requests per second per client address (0: no limit)");
  app.add_option("--max-inflight", max_inflight, "requests in flight at once (503 beyond; 0: no limit)");
  app.add_option("--max-conns", max_conns, "open connections at once (refused beyond)");
  CLI11_PARSE(app, argc, argv);

  mpg::http::Model model{};
  mpg::http::parse_model(model_s, &model);
  if (!split_listen(listen, &opt.host, &opt.port)) {
    std::fprintf(stderr, "mpg-httpd: --listen wants host:port, got %s\n", listen.c_str());
    return 2;
  }
  if (kv_s == "actor" && model == mpg::http::Model::Reactor) {
    std::fprintf(stderr, "mpg-httpd: --kv actor needs goroutine handlers (goroutine or hybrid model)\n");
    return 2;
  }
  if (opt.loops == 0) opt.loops = model == mpg::http::Model::Reactor ? 2 : 1;

  // The stop signals are blocked in every thread (runtime threads and loops inherit the mask);
  // the main goroutine takes them with sigwait inside mpg::blocking.
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  return mpg::run([&]() -> int {
    std::unique_ptr<httpd::Kv> kv;
    if (kv_s == "actor") kv = std::make_unique<httpd::ActorKv>();
    else kv = std::make_unique<httpd::ShardedKv>();
    mpg::http::Router router;
    httpd::add_routes(router, *kv, {.debug_endpoints = debug_public || is_loopback(opt.host)});
    // The production kit. Middleware runs outermost first: drain, metrics, rate, concurrency.
    mpg::kit::Registry registry;
    mpg::kit::ConnectionManager conns(mpg::kit::ConnectionPolicy{.max_connections = max_conns});
    conns.register_metrics(registry);
    if (!bare) {  // the connection cap is part of the kit: --bare holds what the descriptors allow
      opt.on_open = [&conns] { return conns.on_open(); };
      opt.on_close = [&conns] { conns.on_close(); };
    }
    registry.gauge_fn("mpg_goroutines", "Live goroutines.", [] { return double(mpg::stats().goroutines); });
    registry.gauge_fn("mpg_threads", "OS threads of the goroutine runtime.", [] { return double(mpg::stats().threads); });
    registry.gauge_fn("mpg_sched_spread_cap", "Ps the netpoller spreads readied goroutines over (below procs while the threads wait for a CPU).",
                      [] { return double(mpg::stats().spread_cap); });
    registry.counter_fn("mpg_sched_contended_windows_total", "Sysmon windows (~10 ms) in which the runtime's threads waited half a CPU or more.",
                        [] { return double(mpg::stats().contended_windows); });
    mpg::kit::Drain drain;
    mpg::kit::Scavenger scavenger;
    mpg::Chan<int> scavenger_stop;  // closed at shutdown
    mpg::WaitGroup scavenger_done;
    std::optional<mpg::kit::HttpMetrics> metrics;
    std::optional<mpg::kit::RateLimiter> limiter;
    std::optional<mpg::kit::ConcurrencyLimiter> inflight;
    if (!bare) {
      router.use(drain.middleware());
      metrics.emplace(registry);
      router.use(metrics->middleware());
      if (rate > 0 || client_rate > 0) {
        limiter.emplace(mpg::kit::RateLimitConfig{.server = {rate, std::max(1.0, rate / 10)},
                                                  .per_client = {client_rate, std::max(1.0, client_rate / 10)}});
        limiter->register_metrics(registry);
        router.use(limiter->middleware());
      }
      if (max_inflight > 0) {
        inflight.emplace(mpg::kit::ConcurrencyConfig{.limit = max_inflight});
        inflight->register_metrics(registry);
        router.use(inflight->middleware());
      }
      // Free heap memory goes back to the kernel once a second when a burst of closes left
      // plenty of it (docs/kit.md, the scavenger): RSS follows the load down, as Go's does.
      scavenger.register_metrics(registry);
    }
    router.get("/metrics", registry.handler());
    const mpg::http::Handler& h = router.handler();
    std::optional<mpg::http::GoroutineServer> gs;
    std::optional<mpg::http::ReactorServer> rs;
    std::optional<mpg::http::HybridServer> hs;
    std::uint16_t port = 0;
    try {
      switch (model) {
        case mpg::http::Model::Goroutine: gs.emplace(h, opt), gs->start(), port = gs->port(); break;
        case mpg::http::Model::Reactor: rs.emplace(h, opt), rs->start(), port = rs->port(); break;
        case mpg::http::Model::Hybrid: hs.emplace(h, opt), hs->start(), port = hs->port(); break;
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mpg-httpd: %s\n", e.what());
      return 1;
    }
    if (!bare) {  // started once nothing can return early: main waits for it at the end
      scavenger_done.add(1);
      mpg::go([&scavenger, &scavenger_done, stop = scavenger_stop]() mutable {
        for (bool running = true; running;) {
          mpg::blocking([&] { return scavenger.tick(); });
          mpg::select(mpg::on_recv(stop, [&](std::optional<int>) { running = false; }),
                      mpg::on_timeout(kScavengeEvery, [] {}));
        }
        scavenger_done.done();
      });
    }
    std::printf("listening %u\n", unsigned(port));
    std::fflush(stdout);
    int sig = 0;
    mpg::blocking([&] { return sigwait(&stop_set, &sig); });
    drain.begin();  // responses from now on carry Connection: close
    if (gs) gs->shutdown(kShutdownGrace);
    if (rs) rs->shutdown(kShutdownGrace);
    if (hs) hs->shutdown(kShutdownGrace);
    scavenger_stop.close();
    scavenger_done.wait();  // before the scavenger and the registry it reports to go away
    return 0;
  }, cfg);
}
