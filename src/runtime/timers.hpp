// timers.hpp: runtime timers: a TimerNode armed on the current P's 4-ary min-heap.
//
// Each P owns a heap of entries {when, node, seq}. A node's state word is gen<<1 | armed; every
// arm bumps gen and pushes a new entry carrying the new state as its seq. An entry is live only
// while its seq equals the node's state: stop() clears the armed bit, a re-arm moves gen on, and
// the stale entries left behind on any P's heap are skipped when they reach the top and swept
// when they pile up. So stop and reset never touch another P's heap (Go's rule), and exactly one
// of "fire" and "stop" wins, by one CAS on the state word.
//
// Lifetime: an entry holds a reference on its node. Nodes embedded in a G (sleep, select
// timeout) are never freed while the runtime runs; heap-allocated nodes (mpg::Timer) are freed
// when their owner and every entry have let go.
#pragma once
#include <atomic>
#include <cstdint>
#include <vector>

#include "runtime/lock.hpp"

namespace mpg::detail {

struct P;

// TimerNode: one timer. fire(node, seq) runs on an M that holds a P, outside any heap lock; for
// periodic nodes the runtime re-arms at when+period before calling fire.
struct TimerNode {
  std::atomic<std::uint64_t> state{0};  // gen<<1 | armed
  std::atomic<std::int32_t> refs{1};    // owner + one per heap entry
  bool counted = false;                 // refcounted (heap-allocated) node
  std::atomic<std::int64_t> period{0};  // ns; 0 for one-shot
  void (*fire)(TimerNode*, std::uint64_t seq) = nullptr;
  void (*free)(TimerNode*) = nullptr;   // called when refs reach 0 (counted nodes)
  void* arg = nullptr;
  std::atomic<P*> home{nullptr};        // the P whose heap holds the live entry (for stale counts)

  void ref() {
    if (counted) refs.fetch_add(1, std::memory_order_relaxed);
  }
  void unref() {
    if (counted && refs.fetch_sub(1, std::memory_order_acq_rel) == 1) free(this);
  }
  // next_seq: the seq the next arm() will use (valid when only one party arms this node).
  std::uint64_t next_seq() const { return (((state.load(std::memory_order_relaxed) >> 1) + 1) << 1) | 1; }
};

// timer_arm: arms (or re-arms) node to fire at `when` (nanotime), on the current P's heap, or on
// P 0's if the caller holds no P. Returns whether it was armed before (Go's Reset result).
bool timer_arm(TimerNode* node, std::int64_t when);
// timer_stop: disarms; true if the timer was armed and had not fired (Go's Stop result).
bool timer_stop(TimerNode* node);

// TimerHeap: one P's timers. lock guards heap; when0 (earliest live-or-stale when, 0 if empty)
// is read without the lock by other Ms computing how long they may sleep.
struct TimerHeap {
  struct Entry {
    std::int64_t when;
    TimerNode* node;
    std::uint64_t seq;
  };
  Lock lock;
  std::vector<Entry> heap;                // guarded by lock
  std::atomic<std::int64_t> when0{0};
  std::atomic<std::uint32_t> stale{0};    // entries known stale (stop() counts here)

  void push(const Entry& e);              // lock held
  void pop_top();                         // lock held
  void sweep();                           // lock held: drops stale entries, re-heapifies
  void update_when0() { when0.store(heap.empty() ? 0 : heap[0].when, std::memory_order_release); }
};

// run_timers: fires p's due timers (lock taken inside). Returns the earliest pending when (0 if
// none). Called by p's owner at the top of the search, and by a thief on its last steal pass.
std::int64_t run_timers(P* p, std::int64_t now);

}  // namespace mpg::detail
