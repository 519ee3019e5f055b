// debug.cpp: what mpg prints when asked or when it must die: the goroutine dump (Go's format,
// with wait times and creation sites), fatal errors, and the SCHED trace line.
//
// The dump walks the append-only list of every G ever carved without taking a lock, and
// formats with no allocation, so the SIGQUIT and SIGSEGV handlers can print it too. The states
// it reads may be changing underneath; a dump is a snapshot of racy reads, as Go's is.
#include <unistd.h>

#include <cstring>
#include <string>

#include "runtime/sched.hpp"

namespace mpg::detail {

namespace {

// Out: a tiny formatter over a fixed buffer, flushed to an fd or a string. Signal-safe with an fd.
class Out {
 public:
  explicit Out(int fd) : fd_(fd) {}
  explicit Out(std::string* s) : str_(s) {}
  ~Out() { flush(); }
  Out& s(const char* p) {
    while (*p) c(*p++);
    return *this;
  }
  Out& c(char ch) {
    if (n_ == sizeof buf_) flush();
    buf_[n_++] = ch;
    return *this;
  }
  Out& u(std::uint64_t v) {
    char t[24];
    int k = 0;
    do t[k++] = char('0' + v % 10), v /= 10;
    while (v);
    while (k) c(t[--k]);
    return *this;
  }
  // dur: a duration in ns as Go prints wait times ("1.5s", "12ms", "3 minutes").
  Out& dur(std::int64_t ns) {
    if (ns < 0) ns = 0;
    if (ns >= 60'000'000'000) return u(std::uint64_t(ns / 60'000'000'000)).s(" minutes");
    if (ns >= 1'000'000'000) return u(std::uint64_t(ns / 1'000'000'000)).c('.').u(std::uint64_t(ns / 100'000'000 % 10)).c('s');
    return u(std::uint64_t(ns / 1'000'000)).s("ms");
  }
  void flush() {
    if (n_ == 0) return;
    if (str_) str_->append(buf_, n_);
    else write_all(fd_, buf_, n_);
    n_ = 0;
  }

 private:
  int fd_ = -1;
  std::string* str_ = nullptr;
  char buf_[1024];
  std::size_t n_ = 0;
};

void dump_to(Out& o) {
  if (!sched) return;
  std::int64_t now = coarse_nanotime();
  for (G* g = __atomic_load_n(&sched->allg, __ATOMIC_ACQUIRE); g; g = g->alllink) {
    GStatus st = g->status.load(std::memory_order_acquire);
    if (st == GStatus::Idle || st == GStatus::Dead) continue;
    o.s("goroutine ").u(g->id).s(" [");
    switch (st) {
      case GStatus::Runnable: o.s("runnable"); break;
      case GStatus::Running: o.s("running"); break;
      case GStatus::Syscall: o.s("syscall"); break;
      case GStatus::Waiting: {
        o.s(wait_reason_string(g->wait_reason));
        std::int64_t waited = now - g->wait_since;
        if (waited >= 1'000'000) o.s(", ").dur(waited);
        break;
      }
      default: break;
    }
    if (g->lockedm) o.s(", locked to thread");
    o.s("]:\n");
    o.s("created by goroutine ").u(g->parent_id).s(" at ");
    o.s(g->created_at.file_name()).c(':').u(g->created_at.line()).s("\n    in ").s(g->created_at.function_name());
    o.s("\n\n");
  }
}

}  // namespace

void write_all(int fd, const char* s, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return;
    }
    s += w;
    n -= std::size_t(w);
  }
}

std::string goroutine_dump() {
  std::string s;
  {
    Out o(&s);
    dump_to(o);
  }
  return s;
}

void dump_to_fd(int fd) {
  Out o(fd);
  dump_to(o);
}

void fatal(const char* msg, bool with_dump) {
  {
    Out o(2);
    o.s("fatal error: ").s(msg).s("\n\n");
    if (with_dump) dump_to(o);
  }
  _exit(2);
}

// ---------------------------------------------------------------------------------------------
// schedtrace: Go's "SCHED 1004ms: gomaxprocs=2 idleprocs=0 threads=5 spinningthreads=0
// idlethreads=2 runqueue=0 [0 0]" line, printed by sysmon every period, plus mpg's preemption
// counts (cooperative/asynchronous/refused) and P retakes before the per-P queue lengths.

static void schedtrace_line(Out& o) {
  std::int64_t ms = (nanotime() - sched->start_time) / 1'000'000;
  sched->lock.lock();
  int threads = int(sched->allm.size());
  int idle_threads = sched->nmidle;
  sched->lock.unlock();
  std::uint64_t coop = 0;
  for (P* p : sched->allp) coop += p->preempt_coop.load(std::memory_order_relaxed);
  o.s("SCHED ").u(std::uint64_t(ms)).s("ms: gomaxprocs=").u(std::uint64_t(sched->procs));
  o.s(" idleprocs=").u(std::uint64_t(sched->npidle.load()));
  o.s(" threads=").u(std::uint64_t(threads));
  o.s(" spinningthreads=").u(std::uint64_t(sched->nmspinning.load()));
  o.s(" idlethreads=").u(std::uint64_t(idle_threads));
  o.s(" runqueue=").u(sched->runqsize.load());
  o.s(" preempt=").u(coop).c('/').u(sched->preempt_async.load()).c('/').u(sched->preempt_refused.load());
  o.s(" retake=").u(sched->retakes.load());
  o.s(" spreadcap=").u(std::uint64_t(sched->spread_cap.load()));
  o.s(" [");
  for (std::size_t i = 0; i < sched->allp.size(); i++) {
    P* p = sched->allp[i];
    if (i) o.c(' ');
    o.u(p->runq.size() + (p->runnext.load(std::memory_order_relaxed) ? 1 : 0));
  }
  o.s("]\n");
}

void schedtrace_line_to_stderr() {
  Out o(2);
  schedtrace_line(o);
}

}  // namespace mpg::detail

namespace mpg {
std::string dump_goroutines() { return detail::goroutine_dump(); }
}  // namespace mpg
