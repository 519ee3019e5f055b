// handler.cpp: dispatch of one fd's readiness (see handler.hpp).
#include "mpg/reactor/handler.hpp"

#include "mpg/reactor/event_loop.hpp"
#include "poll/poller.hpp"

namespace mpg::reactor {

static_assert(poll::kWantRead == 1 && poll::kWantWrite == 2, "Handler's interest bits are poll's");

Handler::Handler(EventLoop& loop, int fd) : loop_(loop), fd_(fd) {}

Handler::~Handler() {
  if (registered_) loop_.remove(*this);
}

void Handler::set_edge_triggered(bool on) {
  edge_ = on;
  if (registered_) loop_.update(*this);
}

void Handler::set_interest(std::uint32_t interest) {
  interest_ = interest;
  loop_.update(*this);
}

void Handler::remove() {
  if (registered_) loop_.remove(*this);
}

void Handler::repost_readable() {
  if (registered_) loop_.repost(*this, poll::kReadable);
}

void Handler::handle(std::uint32_t ready) {
  loop_.assert_in_loop_thread("Handler::handle");
  ready_ = ready;
  // Order as muduo: a hang-up with nothing left to read is a close; errors next; then reads
  // (which see EOF themselves when the peer closed after sending); then writes. Each step
  // re-checks the registration, since a callback may have removed this handler.
  if ((ready & poll::kHangup) && !(ready & poll::kReadable)) {
    if (close_cb_) close_cb_();
    return;
  }
  if ((ready & poll::kError) && error_cb_) {
    error_cb_();
    if (!registered_) return;
  }
  if ((ready & (poll::kReadable | poll::kHangup)) && read_cb_) {
    read_cb_();
    if (!registered_) return;
  }
  if ((ready & poll::kWritable) && write_cb_) write_cb_();
}

}  // namespace mpg::reactor
