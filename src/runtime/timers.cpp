// timers.cpp: per-P 4-ary timer heaps (see timers.hpp for the protocol).
#include "runtime/timers.hpp"

#include <mutex>

#include "runtime/sched.hpp"

namespace mpg::detail {

namespace {

// kSweepMin: heaps smaller than this are never swept (stale entries just pop out in time).
constexpr std::size_t kSweepMin = 64;
// kFireBatch: timers fired per lock hold; more due timers take another round.
constexpr int kFireBatch = 64;

using Entry = TimerHeap::Entry;

void sift_up(std::vector<Entry>& h, std::size_t i) {
  Entry e = h[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / 4;
    if (h[parent].when <= e.when) break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = e;
}

void sift_down(std::vector<Entry>& h, std::size_t i) {
  std::size_t n = h.size();
  Entry e = h[i];
  for (;;) {
    std::size_t c = 4 * i + 1;
    if (c >= n) break;
    std::size_t best = c;
    for (std::size_t k = c + 1; k < c + 4 && k < n; k++)
      if (h[k].when < h[best].when) best = k;
    if (h[best].when >= e.when) break;
    h[i] = h[best];
    i = best;
  }
  h[i] = e;
}

// timer_home: the P whose heap a new arm goes on.
P* timer_home() {
  M* m = current_m();
  if (m && m->p) return m->p;
  return sched->allp[0];
}

}  // namespace

void TimerHeap::push(const Entry& e) {
  heap.push_back(e);
  sift_up(heap, heap.size() - 1);
}

void TimerHeap::pop_top() {
  heap[0] = heap.back();
  heap.pop_back();
  if (!heap.empty()) sift_down(heap, 0);
}

void TimerHeap::sweep() {
  std::size_t j = 0;
  for (std::size_t i = 0; i < heap.size(); i++) {
    Entry& e = heap[i];
    if (e.node->state.load(std::memory_order_acquire) == e.seq) {
      heap[j++] = e;
    } else {
      e.node->unref();
    }
  }
  heap.resize(j);
  for (std::size_t i = heap.size() / 4 + 1; i-- > 0;)
    if (i < heap.size()) sift_down(heap, i);
  stale.store(0, std::memory_order_relaxed);
}

bool timer_arm(TimerNode* node, std::int64_t when) {
  std::uint64_t cur = node->state.load(std::memory_order_relaxed);
  std::uint64_t next;
  do {
    next = (((cur >> 1) + 1) << 1) | 1;
  } while (!node->state.compare_exchange_weak(cur, next, std::memory_order_acq_rel, std::memory_order_relaxed));
  bool was_armed = cur & 1;
  P* p = timer_home();
  if (was_armed) {
    if (P* old = node->home.load(std::memory_order_acquire)) old->timers.stale.fetch_add(1, std::memory_order_relaxed);
  }
  node->home.store(p, std::memory_order_release);
  node->ref();
  bool earliest;
  {
    std::lock_guard<Lock> lk(p->timers.lock);
    p->timers.push(Entry{when, node, next});
    earliest = p->timers.heap[0].node == node && p->timers.heap[0].seq == next;
    p->timers.update_when0();
  }
  if (earliest) wake_poller(when);
  return was_armed;
}

bool timer_stop(TimerNode* node) {
  std::uint64_t cur = node->state.load(std::memory_order_relaxed);
  for (;;) {
    if (!(cur & 1)) return false;
    if (node->state.compare_exchange_weak(cur, cur & ~std::uint64_t(1), std::memory_order_acq_rel, std::memory_order_relaxed)) {
      if (P* p = node->home.load(std::memory_order_acquire)) p->timers.stale.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
}

std::int64_t run_timers(P* p, std::int64_t now) {
  TimerHeap& th = p->timers;
  for (;;) {
    struct Fire {
      TimerNode* node;
      std::uint64_t seq;
    } fire[kFireBatch];
    int nfire = 0;
    TimerNode* drop[kFireBatch];
    int ndrop = 0;
    bool more = false;
    {
      std::lock_guard<Lock> lk(th.lock);
      if (th.heap.size() >= kSweepMin && th.stale.load(std::memory_order_relaxed) * 4 > th.heap.size()) th.sweep();
      while (!th.heap.empty() && th.heap[0].when <= now) {
        if (nfire == kFireBatch || ndrop == kFireBatch) {
          more = true;
          break;
        }
        Entry e = th.heap[0];
        th.pop_top();
        std::uint64_t seq = e.seq;
        std::int64_t period = e.node->period.load(std::memory_order_relaxed);
        // One CAS decides between this firing and a concurrent stop: a one-shot timer goes from
        // armed to disarmed; a ticker goes straight to its next arm, so a stop() can never slip
        // between "fired" and "re-armed" and be lost.
        std::uint64_t next = period > 0 ? (((seq >> 1) + 1) << 1) | 1 : seq & ~std::uint64_t(1);
        if (e.node->state.compare_exchange_strong(seq, next, std::memory_order_acq_rel)) {
          if (period > 0) {
            // Re-arm at the next multiple of the period after now (Go drops missed ticks).
            std::int64_t when = e.when + period * (1 + (now - e.when) / period);
            e.node->ref();
            e.node->home.store(p, std::memory_order_release);
            th.push(Entry{when, e.node, next});
          }
          fire[nfire++] = {e.node, e.seq};
        } else {
          drop[ndrop++] = e.node;
        }
      }
      th.update_when0();
    }
    for (int i = 0; i < ndrop; i++) drop[i]->unref();
    for (int i = 0; i < nfire; i++) {
      fire[i].node->fire(fire[i].node, fire[i].seq);
      fire[i].node->unref();
    }
    if (!more) return th.when0.load(std::memory_order_acquire);
  }
}

}  // namespace mpg::detail
