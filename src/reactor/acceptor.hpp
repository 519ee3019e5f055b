// acceptor.hpp: the listening socket of one loop and its accept policy.
#pragma once
#include <sys/socket.h>

#include <functional>

#include "mpg/poll/unique_fd.hpp"
#include "mpg/reactor/handler.hpp"
#include "reactor/worker.hpp"

namespace mpg::reactor::detail {

// Acceptor: accepts on one listening socket and hands each new socket to a callback; owned by
// the TcpServer, loop thread only (created, used and destroyed there).
//
// Out of descriptors (EMFILE/ENFILE) the listener stays readable, and a level-triggered loop
// would spin on it. So: (1) close the reserved descriptor, accept the pending connection and
// close it at once (the peer sees a clean close instead of hanging in the backlog), take the
// reserve back; (2) stop accepting for accept_pause; (3) log, at most once per log_interval.
class Acceptor {
 public:
  using NewConnection = std::function<void(poll::UniqueFd, const sockaddr_storage&)>;
  // kAcceptBatch: accepts per readiness report, so a connection storm does not starve the
  // loop's established connections (nginx's multi_accept, bounded).
  static constexpr int kAcceptBatch = 64;

  Acceptor(EventLoop& loop, poll::UniqueFd listener, const ServerConfig& cfg, Counters& counters,
           NewConnection cb);
  ~Acceptor();
  void start();
  // close: stops listening for good (shutdown step 1).
  void close();

 private:
  void handle_accept();
  void pause();

  EventLoop& loop_;
  poll::UniqueFd listener_;
  poll::UniqueFd reserve_;
  Handler handler_;
  const ServerConfig& cfg_;
  Counters& counters_;
  RateLog log_;
  NewConnection cb_;
  TimerId resume_;
  bool closed_ = false;
};

}  // namespace mpg::reactor::detail
