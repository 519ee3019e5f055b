// handler.cpp: dispatch of one fd's readiness (see handler.hpp).
#include "mpg/reactor/handler.hpp"

#include "mpg/reactor/event_loop.hpp"
#include "poll/poller.hpp"

namespace mpg::reactor {

static_assert(poll::kWantRead == 1 && poll::kWantWrite == 2, "Handler's interest bits are poll's");

HandlerBase::HandlerBase(EventLoop& loop, int fd) : loop_(loop), fd_(fd) {}

HandlerBase::~HandlerBase() {
  if (registered_) loop_.remove(*this);
}

void HandlerBase::set_edge_triggered(bool on) {
  edge_ = on;
  if (registered_) loop_.update(*this);
}

void HandlerBase::set_interest(std::uint32_t interest) {
  interest_ = interest;
  loop_.update(*this);
}

void HandlerBase::remove() {
  if (registered_) loop_.remove(*this);
}

void HandlerBase::repost_readable() {
  if (registered_) loop_.repost(*this, poll::kReadable);
}

void HandlerBase::handle(std::uint32_t ready) {
  loop_.assert_in_loop_thread("Handler::handle");
  ready_ = ready;
  // Order as muduo: a hang-up with nothing left to read is a close; errors next; then reads
  // (which see EOF themselves when the peer closed after sending); then writes. Each step
  // re-checks the registration, since an event may have removed this handler.
  if ((ready & poll::kHangup) && !(ready & poll::kReadable)) {
    on_close();
    return;
  }
  if ((ready & poll::kError) && on_error() && !registered_) return;
  if ((ready & (poll::kReadable | poll::kHangup)) && on_read() && !registered_) return;
  if (ready & poll::kWritable) on_write();
}

}  // namespace mpg::reactor
