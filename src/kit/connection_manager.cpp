// connection_manager.cpp: admission, the alarm's edges and its rate-limited line, keep-alive.
#include "mpg/kit/connection_manager.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "mpg/kit/registry.hpp"

namespace mpg::kit {

namespace {

// share: ceil(ratio * n), at least 1; the epsilon keeps 0.8 * 10 from rounding up to 9.
std::size_t share(double ratio, std::size_t n) {
  double v = std::ceil(ratio * double(n) - 1e-9);
  return v < 1 ? 1 : std::size_t(v);
}

int set_int(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value) == 0 ? 0 : errno;
}

}  // namespace

int KeepAlive::apply(int fd) const {
  if (int e = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, enabled ? 1 : 0)) return e;
  if (!enabled) return 0;
  if (int e = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, int(idle.count()))) return e;
  if (int e = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, int(interval.count()))) return e;
  return set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, count);
}

ConnectionManager::ConnectionManager(ConnectionPolicy policy)
    : policy_(std::move(policy)),
      alarm_at_(share(policy_.alarm_ratio, policy_.max_connections)),
      clear_at_(std::min(alarm_at_, share(policy_.clear_ratio, policy_.max_connections))),
      slots_(policy_.max_connections) {
  if (policy_.max_connections == 0)
    throw std::invalid_argument("kit::ConnectionManager: max_connections must be > 0");
  if (!policy_.log)
    policy_.log = [](std::string_view line) {
      std::fprintf(stderr, "%.*s\n", int(line.size()), line.data());
    };
}

bool ConnectionManager::on_open() {
  std::size_t held = 0;
  if (!slots_.try_acquire(&held)) {
    refused_.inc();
    return false;
  }
  accepted_.inc();
  if (held >= alarm_at_ && !alarmed_.load(std::memory_order_relaxed)) {
    bool off = false;
    if (alarmed_.compare_exchange_strong(off, true, std::memory_order_relaxed)) raised(held);
  }
  return true;
}

void ConnectionManager::on_close() {
  std::size_t left = slots_.release();
  if (left < clear_at_ && alarmed_.load(std::memory_order_relaxed)) {
    bool on = true;
    alarmed_.compare_exchange_strong(on, false, std::memory_order_relaxed);
  }
}

void ConnectionManager::raised(std::size_t open) {
  crossings_.fetch_add(1, std::memory_order_relaxed);
  unlogged_.fetch_add(1, std::memory_order_relaxed);
  std::int64_t now = to_ns(policy_.time.now());
  std::int64_t last = last_log_.load(std::memory_order_relaxed);
  std::int64_t interval = Nanos(policy_.alarm_log_interval).count();
  if (now - last < interval || !last_log_.compare_exchange_strong(last, now)) return;
  // n counts this crossing and those not logged since the last line; 0 if a concurrent logger
  // already reported this one.
  std::uint64_t n = unlogged_.exchange(0, std::memory_order_relaxed);
  if (n == 0) return;
  std::string line = "mpg: connections: " + std::to_string(open) + " open, at or over " +
                     std::to_string(int(std::lround(policy_.alarm_ratio * 100))) +
                     "% of the limit " + std::to_string(policy_.max_connections);
  if (n > 1) line += " (" + std::to_string(n - 1) + " earlier crossings not logged)";
  policy_.log(line);
}

void ConnectionManager::register_metrics(Registry& r, std::string_view prefix) const {
  std::string p = std::string(prefix) + "connections_";
  r.gauge_fn(p + "open", "Connections open now.", [this] { return double(open()); });
  r.gauge_fn(p + "limit", "The connection limit.",
             [this] { return double(policy_.max_connections); });
  r.gauge_fn(p + "alarm", "1 while open connections are at or over the alarm share of the limit.",
             [this] { return alarmed() ? 1.0 : 0.0; });
  r.counter_fn(p + "accepted_total", "Connections admitted.",
               [this] { return double(accepted()); });
  r.counter_fn(p + "refused_total", "Connections closed at once because the limit was reached.",
               [this] { return double(refused()); });
  r.counter_fn(p + "alarms_total", "Times the open count crossed up into the alarm.",
               [this] { return double(crossings()); });
}

}  // namespace mpg::kit
