// chan_select.cpp: fuzz_chan_select: an interpreter of small concurrent programs over mpg's
// channels and select, checked against a model of what Go's channel semantics allow.
//
// Input layout (every byte string is a valid program; it ends where the bytes do):
//   byte 0     workers n = 2 + b % 2; channels m = 1 + (b >> 1) % 3
//   byte 1     capacities: channel i holds (b >> 2i) & 3 values (0: unbuffered)
//   then ops, 3 bytes each (at most kMaxOps): [worker << 4 | kind] [x] [y]; the channel is x % m
//     kind % 11: 0 send, 1 recv, 2 try_send, 3 try_recv, 4 close, 5 select, 6 sleep or yield,
//     7 len/cap, 8 send with a timeout, 9 recv with a timeout, 10 select with a default.
//     select: 1 + y % 3 channel cases on channels x % m, (x >> 5) % m and (y >> 6) % m (one
//     channel may appear twice); case i is a send if bit 2 + i of x is set, else a receive;
//     (y >> 4) & 3 adds nothing, a default, a timeout, or both. Every duration (a timeout, a
//     sleep) is kDurations[(y >> 2) & 3].
// Each worker runs its ops in order in its own goroutine, inside mpg::run with one P (so the
// interleaving is nearly deterministic) and asynchronous preemption off. Values are
// unique_ptr<uint32_t> (move-only, heap-allocated, so a lost or doubled value is a leak or a
// double free for ASan) whose payload names the sender, the channel and a sequence number.
//
// Nothing can hang. Every op is bounded except a blocking send, recv or select without a
// timeout or default; the main goroutine watches the workers, and when every unfinished worker
// sits in such an op and nothing progressed over two polls, it closes every channel (a
// "rescue": an ordinary close, checked like any other), which wakes them all: afterwards no op
// can block. A worker that is still not done kHangLimit after the start aborts with the
// goroutine dump: that is a runtime bug (a lost wake-up or a timer that never fired).
//
// Invariants (a violation aborts):
//   1. A received value was sent on that channel, by a send that completed (checked at the
//      end), and is received once; no value is lost: at the end, what was sent is exactly what
//      was received plus what remains buffered (drained by main, at most cap values).
//   2. FIFO: one receiver gets one sender's values on one channel in the order they were sent;
//      the values left in a buffer at the end come after every value received from the same
//      sender on that channel.
//   3. Close: a send that starts after a close returned throws ClosedChannel; a send throws it
//      or a receive reports closed (nullopt) only if a close was attempted; exactly one close
//      of a channel succeeds and any other throws ChannelMisuse; after the drain a closed
//      channel reports closed and an open one is empty.
//   4. try_send that fails (or throws) leaves the move-only value with the caller.
//   5. select runs exactly one case's callback, the one whose index it returns; a timeout case
//      fires no earlier than its duration; a send case never fires on a channel that was
//      closed before the select started.
//   6. len() <= cap() == the capacity it was made with.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "input.hpp"
#include "mpg/mpg.hpp"

namespace {

using mpg::fuzz::Input;
using Value = std::unique_ptr<std::uint32_t>;
using Ch = mpg::Chan<Value>;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kMaxWorkers = 3;
constexpr int kMaxChans = 3;
constexpr int kMain = kMaxWorkers;  // the receiver index of the main goroutine's final drain
constexpr std::size_t kMaxOps = 64;
// kDurations: timeouts and sleeps, short so a program runs in milliseconds.
constexpr std::chrono::nanoseconds kDurations[] = {0ns, 1us, 20us, 200us};
constexpr auto kPoll = 20us;       // the main goroutine's watch interval
constexpr auto kRescueAfter = 1s;  // close everything regardless, after this
constexpr auto kHangLimit = 10s;   // a worker still running then is a hang

enum Kind : std::uint8_t {
  kSend,
  kRecv,
  kTrySend,
  kTryRecv,
  kClose,
  kSelect,
  kSleep,
  kLen,
  kTimedSend,
  kTimedRecv,
  kSelectDefault,
  kKinds
};

struct Op {
  Kind kind;
  std::uint8_t x, y;
};

// State: what a worker is doing, as the main goroutine's watch sees it.
enum class State : int { kRunning, kBlocked, kTimed, kDone };

// payload: worker w's sequence number seq on channel c.
std::uint32_t payload(int w, int c, std::uint32_t seq) {
  return std::uint32_t(w + 1) << 24 | std::uint32_t(c) << 16 | seq;
}
int sender_of(std::uint32_t v) { return int(v >> 24) - 1; }
int chan_of(std::uint32_t v) { return int(v >> 16) & 0xff; }
std::uint32_t seq_of(std::uint32_t v) { return v & 0xffff; }

// ChanModel: what the model knows of one channel.
struct ChanModel {
  std::atomic<int> close_attempts{0};  // close() calls begun
  std::atomic<bool> closed{false};     // a close() has returned
  int close_ok = 0;                    // close() calls that returned normally
  std::set<std::uint32_t> sent;        // values whose send completed
  std::vector<std::uint32_t> received;
};

// Model: the shared record. Goroutines update it between channel operations (never across
// one), under `mu`.
struct Model {
  std::mutex mu;
  std::array<ChanModel, kMaxChans> ch;
  std::set<std::uint32_t> received;
  // last[r][c][s]: the last sequence number receiver r got from sender s on channel c, + 1.
  std::uint32_t last[kMaxWorkers + 1][kMaxChans][kMaxWorkers] = {};
  // max_worker_seq[c][s]: the highest sequence number any worker received from s on c, + 1.
  std::uint32_t max_worker_seq[kMaxChans][kMaxWorkers] = {};
  std::atomic<std::uint64_t> progress{0};
  std::array<std::atomic<State>, kMaxWorkers> state{};
  std::atomic<int> done{0};

  void on_sent(int c, std::uint32_t v, bool was_closed) {
    FUZZ_CHECK(!was_closed, "a send on channel %d completed after its close returned", c);
    std::lock_guard<std::mutex> lk(mu);
    FUZZ_CHECK(ch[c].sent.insert(v).second, "value %08x sent twice", v);
  }
  void on_received(int r, int c, const Value& v) {
    FUZZ_CHECK(v != nullptr, "received an empty value on channel %d", c);
    const std::uint32_t x = *v;
    const int s = sender_of(x);
    FUZZ_CHECK(s >= 0 && s < kMaxWorkers && chan_of(x) == c,
               "receiver %d got %08x on channel %d: not a value sent there", r, x, c);
    std::lock_guard<std::mutex> lk(mu);
    FUZZ_CHECK(received.insert(x).second, "value %08x received twice", x);
    FUZZ_CHECK(seq_of(x) + 1 > last[r][c][s],
               "FIFO: receiver %d got seq %u from sender %d on channel %d after seq %u", r,
               seq_of(x), s, c, last[r][c][s] - 1);
    last[r][c][s] = seq_of(x) + 1;
    if (r != kMain) {
      ch[c].received.push_back(x);
      if (seq_of(x) + 1 > max_worker_seq[c][s]) max_worker_seq[c][s] = seq_of(x) + 1;
    } else {
      FUZZ_CHECK(seq_of(x) + 1 > max_worker_seq[c][s],
                 "FIFO: seq %u from sender %d left in channel %d behind a later one received",
                 seq_of(x), s, c);
    }
  }
  void on_closed_seen(int c, const char* what) {
    FUZZ_CHECK(ch[c].close_attempts.load() > 0, "%s on channel %d that nobody closed", what, c);
  }
};

struct Program {
  int workers = 2, chans = 1;
  int cap[kMaxChans] = {};
  std::vector<Op> ops[kMaxWorkers];
};

Program parse(Input& in) {
  Program p;
  const std::uint8_t shape = in.u8();
  p.workers = 2 + shape % 2;
  p.chans = 1 + (shape >> 1) % 3;
  const std::uint8_t caps = in.u8();
  for (int c = 0; c < kMaxChans; ++c) p.cap[c] = (caps >> (2 * c)) & 3;
  for (std::size_t i = 0; i < kMaxOps && !in.done(); ++i) {
    const std::uint8_t head = in.u8();
    Op op{Kind((head & 15) % kKinds), in.u8(), in.u8()};
    p.ops[(head >> 4) % p.workers].push_back(op);
  }
  return p;
}

// Worker: one goroutine's interpreter.
struct Worker {
  int id;
  Model& model;
  std::vector<Ch>& chans;
  const Program& prog;
  std::uint32_t seq = 0;

  int chan(std::uint8_t x) const { return x % prog.chans; }
  Value make(int c) { return std::make_unique<std::uint32_t>(payload(id, c, seq++)); }
  void set(State s) { model.state[id].store(s); }

  void run() {
    for (const Op& op : prog.ops[id]) {
      step(op);
      set(State::kRunning);
      model.progress.fetch_add(1);
    }
  }

  void step(const Op& op) {
    const int c = chan(op.x);
    ChanModel& cm = model.ch[c];
    const auto d = kDurations[(op.y >> 2) & 3];
    switch (op.kind) {
      case kSend: {
        Value v = make(c);
        const std::uint32_t x = *v;
        const bool was_closed = cm.closed.load();
        set(State::kBlocked);
        try {
          chans[c].send(std::move(v));
        } catch (const mpg::ClosedChannel&) {
          model.on_closed_seen(c, "send threw ClosedChannel");
          return;
        }
        model.on_sent(c, x, was_closed);
        return;
      }
      case kRecv: {
        set(State::kBlocked);
        std::optional<Value> v = chans[c].recv();
        if (v) {
          model.on_received(id, c, *v);
        } else {
          model.on_closed_seen(c, "recv returned nullopt");
        }
        return;
      }
      case kTrySend: {
        Value v = make(c);
        const std::uint32_t x = *v;
        const bool was_closed = cm.closed.load();
        bool ok = false;
        try {
          ok = chans[c].try_send(std::move(v));
        } catch (const mpg::ClosedChannel&) {
          model.on_closed_seen(c, "try_send threw ClosedChannel");
        }
        if (ok) {
          FUZZ_CHECK(v == nullptr, "try_send succeeded and left the value");
          model.on_sent(c, x, was_closed);
        } else {
          FUZZ_CHECK(v != nullptr && *v == x, "a failed try_send consumed the value");
        }
        return;
      }
      case kTryRecv: {
        bool closed = true;
        std::optional<Value> v = chans[c].try_recv(&closed);
        if (v) {
          FUZZ_CHECK(!closed, "try_recv gave a value and said closed");
          model.on_received(id, c, *v);
        } else if (closed) {
          model.on_closed_seen(c, "try_recv said closed");
        }
        return;
      }
      case kClose:
        close_chan(model, chans, c);
        return;
      case kSelect:
        select(op, (op.y >> 4) & 3);
        return;
      case kSelectDefault:
        select(op, 1);
        return;
      case kSleep:
        set(State::kTimed);
        if (d == 0ns) {
          mpg::yield();
        } else if (op.y & 1) {
          mpg::sleep_for(d);
        } else {  // a select with no channel case: a sleep through the select path
          const auto start = Clock::now();
          FUZZ_CHECK(mpg::select(mpg::on_timeout(d, [] {})) == 0, "lone timeout case");
          FUZZ_CHECK(Clock::now() - start >= d, "a timeout fired early");
        }
        return;
      case kLen: {
        const std::size_t len = chans[c].len(), cap = chans[c].cap();
        FUZZ_CHECK(cap == std::size_t(prog.cap[c]), "cap() %zu, made with %d", cap, prog.cap[c]);
        FUZZ_CHECK(len <= cap, "len() %zu > cap() %zu", len, cap);
        return;
      }
      case kTimedSend:
      case kTimedRecv: {
        Op one = op;
        one.x = std::uint8_t(op.kind == kTimedSend ? 1 << 2 : 0);
        one.y = std::uint8_t((op.y & 0x0c) | (2 << 4));  // one case, c first, with a timeout
        select(one, 2, c);
        return;
      }
      case kKinds:
        break;
    }
  }

  // SelectCtx: one select's cases and what fired, shared with the case callbacks.
  struct SelectCtx {
    explicit SelectCtx(Worker& worker) : w(worker) {}
    Worker& w;
    int n = 0;      // channel cases
    int extra = 0;  // 0 none, 1 default, 2 timeout, 3 both
    std::chrono::nanoseconds d{};
    int chan[3] = {};
    bool send[3] = {};
    bool was_closed[3] = {};
    std::uint32_t id[3] = {};
    Value val[3];
    int fired = -1, fired_count = 0;
    std::optional<Value> got;
    void fire(int i) {
      fired = i;
      ++fired_count;
    }
  };

  template <class... Cases>
  static int finish(SelectCtx& s, Cases&&... cs) {
    const int n = s.n;
    switch (s.extra) {
      case 1:
        return mpg::select(std::forward<Cases>(cs)..., mpg::on_default([&s, n] { s.fire(n); }));
      case 2:
        return mpg::select(std::forward<Cases>(cs)...,
                           mpg::on_timeout(s.d, [&s, n] { s.fire(n); }));
      case 3:
        return mpg::select(std::forward<Cases>(cs)..., mpg::on_timeout(s.d, [&s, n] { s.fire(n); }),
                           mpg::on_default([&s, n] { s.fire(n + 1); }));
      default:
        return mpg::select(std::forward<Cases>(cs)...);
    }
  }

  // build: adds case k = sizeof...(cs) (a send or a receive) until there are s.n, then runs.
  template <class... Cases>
  static int build(SelectCtx& s, Cases&&... cs) {
    constexpr int k = int(sizeof...(Cases));
    if constexpr (k < 3) {
      if (k < s.n) {
        const Ch& ch = s.w.chans[s.chan[k]];
        if (s.send[k])
          return build(s, std::forward<Cases>(cs)...,
                       mpg::on_send(ch, std::move(s.val[k]), [&s] { s.fire(k); }));
        return build(s, std::forward<Cases>(cs)..., mpg::on_recv(ch, [&s](std::optional<Value> v) {
                       s.got = std::move(v);
                       s.fire(k);
                     }));
      }
    }
    return finish(s, std::forward<Cases>(cs)...);
  }

  // select: the op's cases as the top of the file describes (or one case, on channel `only`);
  // `extra`: 0 nothing more, 1 a default, 2 a timeout, 3 both.
  void select(const Op& op, int extra, int only = -1) {
    SelectCtx s(*this);
    s.n = only >= 0 ? 1 : 1 + op.y % 3;
    s.extra = extra;
    s.d = kDurations[(op.y >> 2) & 3];
    for (int i = 0; i < s.n; ++i) {
      s.chan[i] = only >= 0 ? only : chan(i == 0 ? op.x : i == 1 ? op.x >> 5 : op.y >> 6);
      s.send[i] = (op.x >> (2 + i)) & 1;
      s.was_closed[i] = model.ch[s.chan[i]].closed.load();
      if (s.send[i]) {
        s.val[i] = make(s.chan[i]);
        s.id[i] = *s.val[i];
      }
    }
    set(extra & 1 ? State::kRunning : extra == 2 ? State::kTimed : State::kBlocked);
    const auto start = Clock::now();
    int r;
    try {
      r = build(s);
    } catch (const mpg::ClosedChannel&) {
      FUZZ_CHECK(s.fired_count == 0, "a select threw after running a case");
      bool any = false;
      for (int i = 0; i < s.n; ++i)
        any = any || (s.send[i] && model.ch[s.chan[i]].close_attempts > 0);
      FUZZ_CHECK(any, "select threw ClosedChannel with no send case on a closed channel");
      return;
    }
    FUZZ_CHECK(s.fired_count == 1 && s.fired == r, "select returned %d, ran %d case(s), last %d", r,
               s.fired_count, s.fired);
    if (r < s.n) {
      const int c = s.chan[r];
      if (s.send[r]) {
        model.on_sent(c, s.id[r], s.was_closed[r]);
      } else if (s.got) {
        model.on_received(id, c, *s.got);
      } else {
        model.on_closed_seen(c, "select receive got nullopt");
      }
    } else if (r == s.n && (extra & 2)) {
      FUZZ_CHECK(Clock::now() - start >= s.d, "select timeout fired before %lld ns",
                 static_cast<long long>(s.d.count()));
    }
  }

  static void close_chan(Model& model, std::vector<Ch>& chans, int c) {
    ChanModel& cm = model.ch[c];
    cm.close_attempts.fetch_add(1);
    try {
      chans[c].close();
    } catch (const mpg::ChannelMisuse&) {
      FUZZ_CHECK(cm.close_attempts.load() >= 2, "close of channel %d threw, first close", c);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(model.mu);
      FUZZ_CHECK(++cm.close_ok == 1, "channel %d closed twice without ChannelMisuse", c);
    }
    cm.closed.store(true);
  }
};

// check_end: the main goroutine's drain and the final accounting (invariants 1-3).
void check_end(Model& model, std::vector<Ch>& chans, const Program& prog) {
  for (int c = 0; c < prog.chans; ++c) {
    ChanModel& cm = model.ch[c];
    std::set<std::uint32_t> have(cm.received.begin(), cm.received.end());
    std::size_t drained = 0;
    FUZZ_CHECK(chans[c].len() <= chans[c].cap(), "len() > cap() at the end");
    const std::size_t len = chans[c].len();
    for (;;) {
      bool closed = false;
      std::optional<Value> v = chans[c].try_recv(&closed);
      if (!v) {
        FUZZ_CHECK(closed == (cm.close_attempts.load() > 0),
                   "drained channel %d: closed %d, close attempts %d", c, closed,
                   cm.close_attempts.load());
        break;
      }
      FUZZ_CHECK(++drained <= std::size_t(prog.cap[c]), "more than cap values left in %d", c);
      model.on_received(kMain, c, *v);
      have.insert(**v);
    }
    FUZZ_CHECK(drained == len, "channel %d: len() was %zu, drained %zu", c, len, drained);
    FUZZ_CHECK(have == cm.sent, "channel %d: %zu values sent, %zu received or left", c,
               cm.sent.size(), have.size());
    FUZZ_CHECK(cm.close_ok == (cm.close_attempts.load() > 0 ? 1 : 0),
               "channel %d: %d closes succeeded of %d", c, cm.close_ok, cm.close_attempts.load());
  }
}

void interpret(const Program& prog) {
  Model model;
  std::vector<Ch> chans;
  for (int c = 0; c < prog.chans; ++c) chans.emplace_back(prog.cap[c]);
  for (int w = 0; w < prog.workers; ++w) {
    mpg::go([&model, &chans, &prog, w] {
      Worker worker{w, model, chans, prog};
      try {
        worker.run();
      } catch (const std::exception& e) {
        FUZZ_CHECK(false, "worker %d: unexpected exception: %s", w, e.what());
      }
      model.state[w].store(State::kDone);
      model.done.fetch_add(1);
    });
  }
  // Watch: rescue the workers when all that remain are blocked for good (see the top).
  const auto start = Clock::now();
  std::uint64_t last = ~std::uint64_t{0};
  int still = 0;
  bool rescued = false;
  while (model.done.load() < prog.workers) {
    mpg::sleep_for(kPoll);
    bool stuck = true;
    for (int w = 0; w < prog.workers; ++w) {
      State s = model.state[w].load();
      stuck = stuck && (s == State::kBlocked || s == State::kDone);
    }
    const std::uint64_t p = model.progress.load();
    still = stuck && p == last ? still + 1 : 0;
    last = p;
    const auto elapsed = Clock::now() - start;
    if (!rescued && (still >= 2 || elapsed > kRescueAfter)) {
      rescued = true;
      for (int c = 0; c < prog.chans; ++c) Worker::close_chan(model, chans, c);
    }
    if (elapsed > kHangLimit) {
      std::fputs(mpg::dump_goroutines().c_str(), stderr);
      FUZZ_CHECK(
          false, "workers still running %lld s after the start (rescued: %d)",
          static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(elapsed).count()),
          rescued);
    }
  }
  check_end(model, chans, prog);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  const Program prog = parse(in);
  mpg::Config cfg;
  cfg.procs = 1;
  cfg.async_preempt = false;
  mpg::run([&prog] { interpret(prog); }, cfg);
  return 0;
}
