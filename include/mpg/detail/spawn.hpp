// detail/spawn.hpp: the non-template entry points that mpg::go and mpg::run are built on.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <source_location>
#include <type_traits>
#include <utility>

#include "mpg/config.hpp"

namespace mpg::detail {

struct G;

// kInlineClosureBytes: closures up to this size live in the goroutine's stack top page, next to
// its G, so a spawn allocates nothing from the heap; larger ones are boxed. Closures up to
// kSmallClosureBytes (one or two captured pointers, the common case) live inside the G itself,
// in the cache line a spawn writes anyway.
inline constexpr std::size_t kInlineClosureBytes = 192;
inline constexpr std::size_t kInlineClosureAlign = 16;
inline constexpr std::size_t kSmallClosureBytes = 16;

// SpawnSlot: a fresh G (not yet runnable) and the two places its closure may go.
struct SpawnSlot {
  G* g;
  void* storage;  // kInlineClosureBytes below the G
  void* small;    // kSmallClosureBytes inside the G
};

// spawn_begin: takes a G from the pool (or carves a new stack); stack_size 0 = the default.
SpawnSlot spawn_begin(std::size_t stack_size);
struct ClosureFns;
// spawn_commit: the closure is in place; make the G runnable (in the current P's runnext).
void spawn_commit(G* g, const ClosureFns& fns, const std::source_location& where);
// spawn_prepare: as spawn_commit, but the G joins the list *head..*tail instead of a run queue;
// spawn_inject makes such a list runnable at once (see SpawnBatch).
void spawn_prepare(G* g, const ClosureFns& fns, const std::source_location& where, G** head, G** tail);
void spawn_inject(G* head);

// run_main: the body of mpg::run: starts the runtime, runs main as the first G, returns its code.
int run_main(const Config& cfg, int (*invoke)(void*), void* main_closure);

template <class Fn>
void invoke_closure(void* p) {
  (*static_cast<Fn*>(p))();
}
template <class Fn>
void destroy_closure(void* p) {
  static_cast<Fn*>(p)->~Fn();
}
// Boxed: a closure too big or too aligned for the inline slot lives on the heap.
template <class Fn>
struct Boxed {
  Fn* fn;
  void operator()() { (*fn)(); }
  ~Boxed() { delete fn; }
};

// ClosureFns / place_closure: moves f into a fresh G's closure storage (inside the G when small,
// below it up to kInlineClosureBytes, else boxed on the heap) and names where it went and the
// functions that run and destroy it.
struct ClosureFns {
  void (*invoke)(void*);
  void (*destroy)(void*);
  void* at;
};
template <class F>
ClosureFns place_closure(const SpawnSlot& s, F&& f) {
  using Fn = std::decay_t<F>;
  if constexpr (sizeof(Fn) <= kSmallClosureBytes && alignof(Fn) <= kInlineClosureAlign) {
    ::new (s.small) Fn(std::forward<F>(f));
    return {&invoke_closure<Fn>, &destroy_closure<Fn>, s.small};
  } else if constexpr (sizeof(Fn) <= kInlineClosureBytes && alignof(Fn) <= kInlineClosureAlign) {
    ::new (s.storage) Fn(std::forward<F>(f));
    return {&invoke_closure<Fn>, &destroy_closure<Fn>, s.storage};
  } else {
    using B = Boxed<Fn>;
    static_assert(sizeof(B) <= kSmallClosureBytes);
    ::new (s.small) B{new Fn(std::forward<F>(f))};
    return {&invoke_closure<B>, &destroy_closure<B>, s.small};
  }
}

// SpawnBatch: goroutines spawned in bursts by a thread outside the runtime (the hybrid server's
// event loops). go() from such a thread takes the global queue's lock and calls wakep for every
// goroutine; add() only prepares the G, and flush() makes the whole batch runnable with one lock
// and one wakep. Not thread-safe: one owner thread. A batch must be flushed: its goroutines run
// only then.
class SpawnBatch {
 public:
  SpawnBatch() = default;
  SpawnBatch(const SpawnBatch&) = delete;
  SpawnBatch& operator=(const SpawnBatch&) = delete;
  ~SpawnBatch() { flush(); }

  template <class F>
  void add(F&& f, const std::source_location& where = std::source_location::current()) {
    SpawnSlot s = spawn_begin(0);
    ClosureFns fns = place_closure(s, std::forward<F>(f));
    spawn_prepare(s.g, fns, where, &head_, &tail_);
    n_++;
  }
  void flush() {
    if (!head_) return;
    G* h = head_;
    head_ = tail_ = nullptr;
    n_ = 0;
    spawn_inject(h);
  }
  int size() const { return n_; }

 private:
  G* head_ = nullptr;
  G* tail_ = nullptr;
  int n_ = 0;
};

}  // namespace mpg::detail
