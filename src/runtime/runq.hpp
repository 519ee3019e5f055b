// runq.hpp: the run queues: P's lock-free 256-slot ring (Go's runq) and an intrusive FIFO of Gs.
#pragma once
#include <atomic>
#include <cstdint>

#include "runtime/g.hpp"

namespace mpg::detail {

inline constexpr std::uint32_t kLocalQueueSize = 256;

// GRing: a growable FIFO of G pointers (the global run queue, under the scheduler lock). An
// array rather than a list linked through the Gs: moving a batch touches no G memory, which
// matters when each G sits on a page of its own and the queue is cold (Go links through
// g.schedlink; with 2 KiB stacks packed into spans it can afford to).
class GRing {
 public:
  std::uint32_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  void push_back(G* g) {
    if (n_ == cap_) grow();
    buf_[(head_ + n_) & (cap_ - 1)] = g;
    n_++;
  }
  void push_front(G* g) {
    if (n_ == cap_) grow();
    head_ = (head_ - 1) & (cap_ - 1);
    buf_[head_] = g;
    n_++;
  }
  G* pop() {
    if (n_ == 0) return nullptr;
    G* g = buf_[head_];
    head_ = (head_ + 1) & (cap_ - 1);
    n_--;
    return g;
  }
  ~GRing() { delete[] buf_; }

 private:
  void grow() {
    std::uint32_t nc = cap_ ? cap_ * 2 : 1024;
    G** nb = new G*[nc];
    for (std::uint32_t i = 0; i < n_; i++) nb[i] = buf_[(head_ + i) & (cap_ - 1)];
    delete[] buf_;
    buf_ = nb;
    cap_ = nc;
    head_ = 0;
  }
  G** buf_ = nullptr;
  std::uint32_t cap_ = 0, head_ = 0, n_ = 0;
};

// GStack: a fixed-capacity LIFO of G pointers (a P's free-G cache; owner only).
template <std::uint32_t N>
struct GStack {
  G* g[N];
  std::uint32_t n = 0;
  bool empty() const { return n == 0; }
  bool full() const { return n == N; }
  static constexpr std::uint32_t capacity() { return N; }
  void push(G* x) { g[n++] = x; }
  G* pop() { return n ? g[--n] : nullptr; }
};

// LocalRunQueue: P's ring. The owner pushes at tail (only it writes tail); the owner and thieves
// pop at head by CAS. Slots are atomics because a thief reads them before its CAS on head
// decides whether the read counted (Go's runqgrab reads them the same way).
class LocalRunQueue {
 public:
  // push: owner only. Returns false when full (the caller moves half to the global queue).
  bool push(G* g) {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    std::uint32_t t = tail_.load(std::memory_order_relaxed);
    if (t - h >= kLocalQueueSize) return false;
    buf_[t % kLocalQueueSize].store(g, std::memory_order_relaxed);
    tail_.store(t + 1, std::memory_order_release);  // publishes the slot to thieves
    return true;
  }
  // pop: owner only (thieves use grab).
  G* pop() {
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      std::uint32_t t = tail_.load(std::memory_order_relaxed);
      if (t == h) return nullptr;
      G* g = buf_[h % kLocalQueueSize].load(std::memory_order_relaxed);
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_release, std::memory_order_relaxed)) return g;
    }
  }
  // take_half: owner only, when full: moves the older half into out[0..127] (for the global queue).
  bool take_half(G** out) {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    std::uint32_t t = tail_.load(std::memory_order_relaxed);
    std::uint32_t n = (t - h) / 2;
    if (n != kLocalQueueSize / 2) return false;  // a thief took some: the push can retry
    G* batch[kLocalQueueSize / 2];
    for (std::uint32_t i = 0; i < n; i++) batch[i] = buf_[(h + i) % kLocalQueueSize].load(std::memory_order_relaxed);
    if (!head_.compare_exchange_strong(h, h + n, std::memory_order_release, std::memory_order_relaxed)) return false;
    for (std::uint32_t i = 0; i < n; i++) out[i] = batch[i];
    return true;
  }
  // grab: any thread. Copies up to half of the queue (rounded up), and at most max, into
  // dst[dst_tail...] of the thief's own ring and claims them by CAS on head. Returns the count.
  std::uint32_t grab(LocalRunQueue& dst, std::uint32_t dst_tail, std::uint32_t max = kLocalQueueSize) {
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      std::uint32_t t = tail_.load(std::memory_order_acquire);
      std::uint32_t n = t - h;
      n = n - n / 2;
      if (n == 0) return 0;
      if (n > kLocalQueueSize / 2) continue;  // read an inconsistent h and t: retry
      if (n > max) n = max;
      for (std::uint32_t i = 0; i < n; i++) {
        G* g = buf_[(h + i) % kLocalQueueSize].load(std::memory_order_relaxed);
        dst.buf_[(dst_tail + i) % kLocalQueueSize].store(g, std::memory_order_relaxed);
      }
      if (head_.compare_exchange_strong(h, h + n, std::memory_order_acq_rel, std::memory_order_relaxed)) return n;
    }
  }
  // publish_stolen: the thief makes n grabbed Gs (at tail .. tail+n-1) visible in its own ring.
  void publish(std::uint32_t t_new) { tail_.store(t_new, std::memory_order_release); }
  // peek: the G k places after the head (owner only; a thief may take it at any moment, so
  // only a hint, for prefetching).
  G* peek(std::uint32_t k) const {
    std::uint32_t h = head_.load(std::memory_order_relaxed);
    if (tail_.load(std::memory_order_relaxed) - h <= k) return nullptr;
    return buf_[(h + k) % kLocalQueueSize].load(std::memory_order_relaxed);
  }
  std::uint32_t tail_relaxed() const { return tail_.load(std::memory_order_relaxed); }
  std::uint32_t head_acquire() const { return head_.load(std::memory_order_acquire); }
  G* slot(std::uint32_t i) const { return buf_[i % kLocalQueueSize].load(std::memory_order_relaxed); }
  std::uint32_t size() const {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    std::uint32_t t = tail_.load(std::memory_order_acquire);
    return t - h > kLocalQueueSize ? 0 : t - h;
  }
  std::uint32_t tail_acquire() const { return tail_.load(std::memory_order_acquire); }

 private:
  alignas(64) std::atomic<std::uint32_t> head_{0};
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  alignas(64) std::atomic<G*> buf_[kLocalQueueSize] = {};
};

}  // namespace mpg::detail
