// connection_manager.hpp: open-connection accounting for the three servers: the limit, an alarm
// at 80% of it, idle-close and TCP keep-alive policy values.
#pragma once
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include "mpg/kit/concurrency_limiter.hpp"
#include "mpg/kit/metrics.hpp"
#include "mpg/kit/time.hpp"

namespace mpg::kit {

class Registry;

// KeepAlive: TCP keep-alive for accepted sockets (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL,
// TCP_KEEPCNT): a peer that vanished without a FIN is found after idle + interval * count
// (here 60 + 10 * 5 s, against Linux's default of over two hours). mpg::net::Conn::
// set_keepalive takes these values; apply() sets them on a raw descriptor (the reactor's).
struct KeepAlive {
  bool enabled = true;
  std::chrono::seconds idle{60};      // quiet time before the first probe
  std::chrono::seconds interval{10};  // between probes
  int count = 5;                      // unanswered probes before the kernel resets it
  // apply: sets the options on socket `fd`; 0 or the errno of the setsockopt that failed.
  int apply(int fd) const;
};

// ConnectionPolicy: the limit, the alarm, idle closing and keep-alive.
struct ConnectionPolicy {
  // max_connections: open connections at once; the next accepted one is closed at once (this
  // machine allows 20,000 descriptors per process; the rest are for the server itself).
  std::size_t max_connections = 16'000;
  // alarm_ratio: the alarm goes on when the open count reaches this share of the limit...
  double alarm_ratio = 0.8;
  // clear_ratio: ...and off when it falls below this share: the gap keeps a count hovering at
  // the line from counting as thousands of crossings.
  double clear_ratio = 0.7;
  // alarm_log_interval: at most one alarm line per interval; crossings in between are counted
  // and reported with the next line.
  std::chrono::milliseconds alarm_log_interval{10'000};
  // idle_timeout: close a keep-alive connection idle this long (http::Limits's default) ...
  std::chrono::milliseconds idle_timeout{60'000};
  // idle_timeout_alarmed: ... or this long while the alarm is on, so idle connections make
  // room for active ones before the limit refuses anyone.
  std::chrono::milliseconds idle_timeout_alarmed{5'000};
  KeepAlive keepalive;
  // log: where the alarm line goes (default: stderr). Called on the thread whose on_open
  // crossed the line: keep it quick.
  std::function<void(std::string_view)> log;
  TimeSource time;
};

// ConnectionManager: counts the connections a server holds, refuses those beyond the limit,
// and raises an alarm (log line, gauge, counter) when the count crosses alarm_ratio of it.
// Transport-agnostic: a server calls on_open() when it accepts, on_close() when it closes an
// admitted connection, and reads the policy values. Thread-safe and lock-free: on_open and
// on_close are one CAS or atomic add plus a load of the alarm flag; only a crossing does more.
class ConnectionManager {
 public:
  explicit ConnectionManager(ConnectionPolicy policy = {});

  // on_open: admits a new connection, or returns false when max_connections are open (the
  // server closes it at once; counted in refused()).
  bool on_open();
  // on_close: an admitted connection closed. Calls must match on_open() == true.
  void on_close();

  std::size_t open() const { return slots_.used(); }
  bool alarmed() const { return alarmed_.load(std::memory_order_relaxed); }
  std::uint64_t crossings() const { return crossings_.load(std::memory_order_relaxed); }
  // unlogged: crossings not yet reported by a log line (they go in the next line's count).
  std::uint64_t unlogged() const { return unlogged_.load(std::memory_order_relaxed); }
  std::uint64_t refused() const { return refused_.value(); }
  std::uint64_t accepted() const { return accepted_.value(); }
  // idle_timeout: the idle-close timeout to arm now (shorter while alarmed).
  std::chrono::milliseconds idle_timeout() const {
    return alarmed() ? policy_.idle_timeout_alarmed : policy_.idle_timeout;
  }
  const KeepAlive& keepalive() const { return policy_.keepalive; }
  const ConnectionPolicy& policy() const { return policy_; }
  std::size_t alarm_at() const { return alarm_at_; }  // open count that raises the alarm
  std::size_t clear_at() const { return clear_at_; }  // open count below which it clears
  // register_metrics: <prefix>connections_open, _limit, _alarm (0 or 1), _accepted_total,
  // _refused_total, _alarms_total. The manager must outlive `r`.
  void register_metrics(Registry& r, std::string_view prefix = "mpg_") const;

 private:
  void raised(std::size_t open);  // a crossing: count it, log it if the interval allows

  ConnectionPolicy policy_;
  std::size_t alarm_at_, clear_at_;
  Slots slots_;
  std::atomic<bool> alarmed_{false};                // set and cleared by CAS: one winner per edge
  std::atomic<std::uint64_t> crossings_{0};         // upward crossings of alarm_at
  std::atomic<std::uint64_t> unlogged_{0};          // crossings since the last line
  std::atomic<std::int64_t> last_log_{kLongAgoNs};  // ns; a CAS picks one logger per interval
  Counter accepted_;
  Counter refused_;
};

}  // namespace mpg::kit
