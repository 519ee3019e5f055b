// detail/spawn.hpp: the non-template entry points that mpg::go and mpg::run are built on.
#pragma once
#include <cstddef>
#include <cstdint>
#include <source_location>

#include "mpg/config.hpp"

namespace mpg::detail {

struct G;

// kInlineClosureBytes: closures up to this size live in the goroutine's stack top page, next to
// its G, so a spawn allocates nothing from the heap; larger ones are boxed.
inline constexpr std::size_t kInlineClosureBytes = 192;
inline constexpr std::size_t kInlineClosureAlign = 16;

// SpawnSlot: a fresh G (not yet runnable) and the storage for its closure.
struct SpawnSlot {
  G* g;
  void* storage;
};

// spawn_begin: takes a G from the pool (or carves a new stack); stack_size 0 = the default.
SpawnSlot spawn_begin(std::size_t stack_size);
// spawn_commit: the closure is in place; make the G runnable (in the current P's runnext).
void spawn_commit(G* g, void (*invoke)(void*), void (*destroy)(void*), const std::source_location& where);

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

}  // namespace mpg::detail
