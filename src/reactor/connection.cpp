// connection.cpp: reads, the output queue, water marks and close (see connection.hpp).
//
// Backpressure, with teeth. After every change to the output queue (a send, a write):
//   1. queued > hard_cap: close now; the peer is not reading and the handler keeps sending.
//   2. queued > high_water and reading: stop reading from this peer (its own sends now fill its
//      socket buffer and block it), count it and call on_high_water once per crossing.
//   3. paused and queued <= low_water: read again.
// Input is bounded the same way: a handler that never consumes its Buffer past hard_cap closes
// the connection. So a connection's memory is at most about hard_cap + read_budget per side.
#include "mpg/reactor/connection.hpp"

#include <cstring>

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "poll/sys.hpp"
#include "reactor/worker.hpp"

namespace mpg::reactor {

void ConnHandle::send(std::string data) const {
  if (!worker_) return;
  detail::Worker* w = worker_;
  std::uint64_t id = id_;
  w->loop().run_in_loop([w, id, d = std::move(data)] {
    if (Connection* c = w->find(id)) c->send(d);
  });
}

void ConnHandle::shutdown() const {
  if (!worker_) return;
  detail::Worker* w = worker_;
  std::uint64_t id = id_;
  w->loop().run_in_loop([w, id] {
    if (Connection* c = w->find(id)) c->shutdown();
  });
}

Connection::Connection(detail::Worker& worker, std::uint64_t id, poll::UniqueFd fd,
                       const sockaddr_storage& peer)
    : worker_(worker),
      id_(id),
      fd_(std::move(fd)),
      handler_(*this, worker.loop(), fd_.get()),
      last_input_(worker.loop().now()) {
  static_assert(sizeof(PeerAddr) <= sizeof(sockaddr_storage));
  std::memcpy(&peer_, &peer, sizeof peer_);
}

Connection::~Connection() { handler_.remove(); }

bool Connection::Events::on_read() {
  c_.handle_read();
  return true;
}
bool Connection::Events::on_write() {
  c_.handle_write();
  return true;
}
bool Connection::Events::on_close() {
  c_.handle_close();
  return true;
}
bool Connection::Events::on_error() { return on_close(); }

ConnHandle Connection::handle() const { return ConnHandle(&worker_, id_); }

void Connection::set_state(State to) {
  // Legal moves: Open -> Draining -> HalfClosed, any -> Closed (once).
  bool ok = (to == State::kClosed && state_ != State::kClosed) ||
            (to == State::kDraining && state_ == State::kOpen) ||
            (to == State::kHalfClosed && (state_ == State::kOpen || state_ == State::kDraining));
  if (!ok) {
    std::fprintf(stderr, "mpg reactor: connection %llu: bad state change %d -> %d\n",
                 static_cast<unsigned long long>(id_), static_cast<int>(state_), static_cast<int>(to));
    std::abort();
  }
  state_ = to;
}

void Connection::start() {
  loop().assert_in_loop_thread("Connection::start");
  handler_.set_edge_triggered(worker_.config().edge_triggered);
  handler_.enable_reading();
  if (worker_.callbacks().on_connection) worker_.callbacks().on_connection(*this);
}

void Connection::handle_read() {
  // A re-posted (synthetic) read may arrive after reading was paused or stopped: honour the pause.
  if (!handler_.reading()) return;
  const auto& cfg = worker_.config();
  std::size_t budget = cfg.read_budget;
  std::size_t got = 0;
  bool eof = false, fin = false;  // fin: the end was the peer's FIN (a read of 0), not an error
  if (input_.capacity() == 0) input_.adopt_storage(worker_.take_storage());
  // The owner's state (user_data) is what on_message touches first: its miss overlaps the read.
  if (user_data_) __builtin_prefetch(user_data_);
  // Level-triggered: one read (up to the budget); epoll reports the rest next iteration.
  // Edge-triggered: read until EAGAIN or the budget, then re-post ourselves so the others of
  // this loop go first; no edge comes for data that was already there.
  for (;;) {
    ssize_t n = input_.read_from(fd_.get(), loop().scratch(), budget - got);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
      if (!handler_.edge_triggered()) break;
      if (got >= budget) {
        handler_.repost_readable();
        break;
      }
      continue;
    }
    if (n == 0) {
      eof = fin = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      eof = true;  // ECONNRESET and friends: the connection is gone
    }
    break;
  }
  if (got > 0) last_input_ = loop().now();
  if (state_ == State::kHalfClosed) {
    input_.retrieve_all();  // we are closing: the peer's late bytes are read only to see its FIN
  } else if (got > 0 && state_ == State::kOpen) {
    if (worker_.callbacks().on_message) worker_.callbacks().on_message(*this, input_);
    if (state_ == State::kClosed) return;
    if (input_.empty()) worker_.give_storage(input_.release_storage());
    if (input_.readable() > cfg.hard_cap) {
      worker_.counters().bump(worker_.counters().hard_cap_closes);
      force_close();
      return;
    }
  }
  if (eof && fin && !out_.empty() && (state_ == State::kOpen || state_ == State::kDraining)) {
    // The peer's FIN with output still queued: it may only have half-closed and still be
    // reading, so write the queue out first, as a Go server's Write after reading EOF does
    // (muduo closes at once and drops it). Draining, then half_close, whose read sees the FIN
    // again and closes. Already draining: on_message called shutdown() on the data read with
    // the FIN (edge-triggered reads go on to the FIN in one call). A reset or an error closes
    // at once: nobody is left to read.
    if (state_ == State::kOpen) {
      set_state(State::kDraining);
      handler_.disable_reading();
    }
    return;
  }
  if (eof && state_ != State::kClosed) handle_close();
}

void Connection::send(std::string_view data) {
  loop().assert_in_loop_thread("Connection::send");
  if ((state_ != State::kOpen) || data.empty()) return;
  std::size_t done = 0;
  if (out_.empty()) {
    ssize_t n = sys::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      done = static_cast<std::size_t>(n);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      // The peer is gone; the read side will see it. Queue nothing.
      handle_close();
      return;
    }
    // Written whole: nothing was queued, so there is no write-complete to report (calling the
    // user back from inside its own send would also invite unbounded recursion).
    if (done == data.size()) return;
  }
  std::string_view rest = data.substr(done);
  if (!out_.empty() && rest.size() < kCoalesceBytes && out_.back().size() < kCoalesceBytes) {
    out_.back().append(rest);
  } else {
    out_.emplace_back(rest);
  }
  out_bytes_ += rest.size();
  if (!handler_.writing()) handler_.enable_writing();
  after_output_change();
}

void Connection::flush() {
  iovec iov[kMaxIov];
  int cnt = 0;
  std::size_t off = out_head_;
  for (auto it = out_.begin(); it != out_.end() && cnt < kMaxIov; ++it, ++cnt) {
    iov[cnt].iov_base = it->data() + off;
    iov[cnt].iov_len = it->size() - off;
    off = 0;
  }
  ssize_t n = sys::writev(fd_.get(), iov, cnt);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) handle_close();
    return;
  }
  std::size_t left = static_cast<std::size_t>(n);
  out_bytes_ -= left;
  while (left > 0) {
    std::size_t head = out_.front().size() - out_head_;
    if (left < head) {
      out_head_ += left;
      break;
    }
    left -= head;
    out_.pop_front();
    out_head_ = 0;
  }
}

void Connection::handle_write() {
  if (state_ == State::kClosed || out_.empty()) {
    if (handler_.writing()) handler_.disable_writing();
    return;
  }
  flush();
  if (state_ == State::kClosed) return;
  if (out_.empty()) {
    handler_.disable_writing();
    if (worker_.callbacks().on_write_complete && state_ == State::kOpen) {
      worker_.callbacks().on_write_complete(*this);
    }
    if (state_ == State::kDraining) half_close();
  }
  if (state_ != State::kClosed) after_output_change();
}

void Connection::after_output_change() {
  const auto& cfg = worker_.config();
  if (out_bytes_ > cfg.hard_cap) {
    worker_.counters().bump(worker_.counters().hard_cap_closes);
    force_close();
    return;
  }
  if (state_ != State::kOpen) return;
  if (!paused_ && out_bytes_ > cfg.high_water) {
    paused_ = true;
    handler_.disable_reading();
    worker_.counters().bump(worker_.counters().high_water_pauses);
    if (worker_.callbacks().on_high_water) worker_.callbacks().on_high_water(*this, out_bytes_);
  } else if (paused_ && out_bytes_ <= cfg.low_water) {
    paused_ = false;
    handler_.enable_reading();
  }
}

void Connection::shutdown() {
  loop().assert_in_loop_thread("Connection::shutdown");
  if (state_ != State::kOpen) return;
  set_state(State::kDraining);
  handler_.disable_reading();
  if (out_.empty()) half_close();
}

void Connection::half_close() {
  // FIN first and keep reading until the peer's FIN: closing with unread input would send a
  // RST, and a RST can destroy output the peer has not read yet.
  set_state(State::kHalfClosed);
  ::shutdown(fd_.get(), SHUT_WR);
  handler_.enable_reading();
}

void Connection::force_close() {
  loop().assert_in_loop_thread("Connection::force_close");
  if (state_ == State::kClosed) return;
  handle_close();
}

void Connection::handle_close() {
  if (state_ == State::kClosed) return;
  set_state(State::kClosed);
  handler_.remove();
  if (worker_.callbacks().on_close) worker_.callbacks().on_close(*this);
  // Last: release() hands ownership to the loop's graveyard; *this lives until the batch ends.
  worker_.release(*this);
}

}  // namespace mpg::reactor
