// acceptor.cpp: accepting, and the EMFILE/ENFILE policy (see acceptor.hpp).
#include "reactor/acceptor.hpp"

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace mpg::reactor::detail {
namespace {
int open_reserve() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }
}  // namespace

Acceptor::Acceptor(EventLoop& loop, poll::UniqueFd listener, const ServerConfig& cfg,
                   Counters& counters, NewConnection cb)
    : loop_(loop),
      listener_(std::move(listener)),
      reserve_(open_reserve()),
      handler_(loop, listener_.get()),
      cfg_(cfg),
      counters_(counters),
      log_(cfg, counters),
      cb_(std::move(cb)) {}

Acceptor::~Acceptor() { close(); }

void Acceptor::start() {
  loop_.assert_in_loop_thread("Acceptor::start");
  handler_.on_readable([this] { handle_accept(); });
  handler_.enable_reading();
}

void Acceptor::close() {
  if (closed_) return;
  loop_.assert_in_loop_thread("Acceptor::close");
  closed_ = true;
  loop_.cancel(resume_);
  handler_.remove();
  listener_.reset();
}

void Acceptor::handle_accept() {
  for (int i = 0; i < kAcceptBatch && !closed_; i++) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    counters_.bump(counters_.accept_calls);
    int fd = ::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&peer), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      cb_(poll::UniqueFd(fd), peer);
      continue;
    }
    int err = errno;
    switch (err) {
      case EAGAIN:
      case EINTR:
        return;
      case ECONNABORTED:
      case EPROTO:
      case EPERM:
        continue;  // this one connection failed; the next may not
      case EMFILE:
      case ENFILE: {
        counters_.bump(counters_.accept_fd_exhausted);
        if (reserve_) {
          reserve_.reset();
          int victim = ::accept(listener_.get(), nullptr, nullptr);
          if (victim >= 0) ::close(victim);
          reserve_.reset(open_reserve());
        }
        log_.log(loop_.now(), std::string("accept: ") + std::strerror(err) +
                                  "; dropping a connection and pausing accept for " +
                                  std::to_string(cfg_.accept_pause.count()) + " ms");
        pause();
        return;
      }
      default:
        // ENOBUFS, ENOMEM: also pause rather than spin; anything else is logged the same way.
        log_.log(loop_.now(), std::string("accept: ") + std::strerror(err) + "; pausing accept");
        pause();
        return;
    }
  }
}

void Acceptor::pause() {
  handler_.disable_reading();
  resume_ = loop_.run_after(cfg_.accept_pause, [this] {
    if (!closed_) handler_.enable_reading();
  });
}

}  // namespace mpg::reactor::detail
