// floor_uring_httpd: the floor's work (floor.cpp) on io_uring instead of epoll, to measure what
// io_uring would take off the least work per request (docs/servers.md, "io_uring"). Built when
// liburing is installed.
//
//   floor_uring_httpd [--host 127.0.0.1] [--port 0]
//
// One thread, one ring (single issuer, cooperative task running). A multishot accept; per
// connection one recv in flight into its own buffer; on its completion, one send of as many
// copies of the floor's 128-byte response as the recv completed requests (the rest of a short
// send is sent before the next recv, as the floor finishes a write before it reads again). All
// the completions of a wait are handled, and the new submissions go in with the next wait: one
// io_uring_enter per batch, where the floor makes an epoll_wait per batch and a read and a send
// per connection. Prints "listening <port>" on stdout once it accepts; exits on SIGINT/SIGTERM.
#include <liburing.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "floor_common.hpp"

namespace {

using namespace floor_peer;

// kRecvBytes: a connection's receive buffer (it holds one for as long as its recv is in flight).
constexpr std::size_t kRecvBytes = 4096;
constexpr unsigned kRingEntries = 4096;
constexpr unsigned kCompletionEntries = 65536;

struct Conn {
  int fd = -1;
  int inflight = 0;          // operations of the ring that still name this connection
  bool closed = false;
  std::uint8_t matched = 0;  // bytes of "\r\n\r\n" the last recv ended with (0..3)
  std::uint64_t owed = 0;    // response bytes not yet sent
  char buf[kRecvBytes];
};

// Each submission's user data: the connection's address with the operation in its low bits.
enum Op : std::uintptr_t { kAccept = 0, kRecv = 1, kSend = 2 };

class Server {
 public:
  explicit Server(int lfd) : lfd_(lfd) {}

  int run() {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = kCompletionEntries;
    if (int e = io_uring_queue_init_params(kRingEntries, &ring_, &p); e < 0) {
      std::fprintf(stderr, "floor_uring_httpd: io_uring_queue_init: %s\n", std::strerror(-e));
      return 1;
    }
    arm_accept();
    while (!g_stop) {
      int e = io_uring_submit_and_wait(&ring_, 1);
      if (e < 0 && e != -EINTR) {
        std::fprintf(stderr, "floor_uring_httpd: io_uring_submit_and_wait: %s\n", std::strerror(-e));
        return 1;
      }
      refresh_date();
      io_uring_cqe* cqe;
      unsigned head, seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        seen++;
        complete(cqe->user_data, cqe->res, cqe->flags);
      }
      io_uring_cq_advance(&ring_, seen);
    }
    io_uring_queue_exit(&ring_);
    return 0;
  }

 private:
  void complete(std::uint64_t data, int res, unsigned flags) {
    auto op = static_cast<Op>(data & 3);
    auto* c = reinterpret_cast<Conn*>(static_cast<std::uintptr_t>(data) & ~std::uintptr_t{3});
    if (op == kAccept) {
      if (res >= 0) {
        int one = 1;
        ::setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        auto* n = new Conn;
        n->fd = res;
        arm_recv(n);
      } else if (!accept_error_told_) {
        std::fprintf(stderr, "floor_uring_httpd: accept: %s\n", std::strerror(-res));
        accept_error_told_ = true;
      }
      if (!(flags & IORING_CQE_F_MORE)) arm_accept();  // the multishot accept ended
      return;
    }
    c->inflight--;
    if (c->closed || res < 0 || (op == kRecv && res == 0)) {
      close(c);
      return;
    }
    if (op == kRecv) {
      c->owed = std::uint64_t{count_requests(c->buf, static_cast<std::size_t>(res), c->matched)} * kResponseBytes;
    } else {
      c->owed -= static_cast<std::uint64_t>(res);
    }
    if (c->owed > 0) arm_send(c);
    else arm_recv(c);
  }

  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (!s) {  // the submission ring is full: hand it to the kernel and take a fresh entry
      io_uring_submit(&ring_);
      s = io_uring_get_sqe(&ring_);
    }
    return s;
  }
  void arm_accept() {
    io_uring_sqe* s = sqe();
    io_uring_prep_multishot_accept(s, lfd_, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, kAccept);
  }
  void arm_recv(Conn* c) {
    io_uring_sqe* s = sqe();
    io_uring_prep_recv(s, c->fd, c->buf, sizeof c->buf, 0);
    io_uring_sqe_set_data64(s, reinterpret_cast<std::uintptr_t>(c) | kRecv);
    c->inflight++;
  }
  void arm_send(Conn* c) {
    std::string_view piece = responses_[cur_].piece(c->owed);
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, c->fd, piece.data(), piece.size(), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, reinterpret_cast<std::uintptr_t>(c) | kSend);
    c->inflight++;
  }
  // refresh_date: a send reads its bytes when the kernel gets to it, possibly after this
  // returns, so the Date is never rewritten under one: the new second's responses go into the
  // other copy, which no send has named for a second.
  void refresh_date() {
    std::string_view d = mpg::http::http_date();
    if (d == date_) return;
    date_.assign(d);
    cur_ ^= 1;
    responses_[cur_].refresh();
  }
  // close: the descriptor at once; the connection once no operation names it any more.
  static void close(Conn* c) {
    if (!c->closed) {
      c->closed = true;
      ::close(c->fd);
    }
    if (c->inflight == 0) delete c;
  }

  int lfd_;
  io_uring ring_{};
  Responses responses_[2];
  int cur_ = 0;
  std::string date_;
  bool accept_error_told_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  return floor_main(argc, argv, "floor_uring_httpd",
                    "the floor HTTP server on io_uring: one thread, one recv and one send per batch", false,
                    [](int lfd) { return Server(lfd).run(); });
}
