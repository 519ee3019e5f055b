// stack.cpp: carving goroutine stacks out of large reservations (see stack.hpp).
#include "runtime/stack.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstdio>
#include <mutex>
#include <new>
#include <vector>

#include "runtime/lock.hpp"
#include "runtime/platform.hpp"

#if MPG_ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace mpg::detail {

namespace {

// A reservation: slots of one size carved in order; `next` is the first uncarved slot.
struct Reservation {
  char* base;
  std::size_t bytes;
  std::size_t slot;
  std::size_t next;
};

enum class GuardMode { Unknown, Madvise, Mprotect };

// kFirstChunkSlots / kMaxChunkSlots: reservations start small (a test that spawns ten
// goroutines maps 4 MiB) and double up to 4096 slots (1 GiB of address space at 256 KiB).
constexpr std::size_t kFirstChunkSlots = 16;
constexpr std::size_t kMaxChunkSlots = 4096;
// kMprotectBudget: guarded stacks allowed in the mprotect fallback (two mappings each), leaving
// room below vm.max_map_count for the rest of the process.
constexpr std::size_t kMprotectBudget = 28000;

struct Arena {
  Lock lock;
  std::vector<Reservation> res;  // guarded by lock
  std::size_t chunk_slots = kFirstChunkSlots;
  GuardMode mode = GuardMode::Unknown;
  std::size_t mprotect_guards = 0;
  bool warned = false;
};
Arena arena;

bool install_guard(char* lo) {
  if (arena.mode == GuardMode::Unknown) {
    if (madvise(lo, kPageSize, MADV_GUARD_INSTALL) == 0) {
      arena.mode = GuardMode::Madvise;
      return true;
    }
    arena.mode = GuardMode::Mprotect;
  } else if (arena.mode == GuardMode::Madvise) {
    return madvise(lo, kPageSize, MADV_GUARD_INSTALL) == 0;
  }
  if (arena.mprotect_guards < kMprotectBudget && mprotect(lo, kPageSize, PROT_NONE) == 0) {
    arena.mprotect_guards++;
    return true;
  }
  if (!arena.warned) {
    arena.warned = true;
    std::fprintf(stderr,
                 "mpg: this kernel lacks MADV_GUARD_INSTALL and %zu mprotect guard pages are in use; "
                 "further goroutine stacks have no guard page\n",
                 arena.mprotect_guards);
  }
  return false;
}

}  // namespace

std::size_t stack_round(std::size_t size) {
  if (size < kMinStackSize) size = kMinStackSize;
  return (size + kPageSize - 1) & ~(kPageSize - 1);
}

StackSlot stack_carve(std::size_t size) {
  std::lock_guard<Lock> lk(arena.lock);
  Reservation* r = nullptr;
  // Only the newest reservation of a size can have room: earlier ones were filled first.
  for (auto it = arena.res.rbegin(); it != arena.res.rend(); ++it) {
    if (it->slot != size) continue;
    if (it->next * it->slot < it->bytes) r = &*it;
    break;
  }
  if (!r) {
    std::size_t slots = arena.chunk_slots;
    if (arena.chunk_slots < kMaxChunkSlots) arena.chunk_slots *= 2;
    std::size_t bytes = slots * size;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
#if MPG_ASAN
    // The range may have held an earlier run's stacks, whose frames ASan still sees poisoned.
    __asan_unpoison_memory_region(p, bytes);
#endif
    arena.res.push_back(Reservation{static_cast<char*>(p), bytes, size, 0});
    r = &arena.res.back();
  }
  StackSlot s;
  s.lo = r->base + r->next * r->slot;
  s.size = size;
  r->next++;
  s.guarded = install_guard(s.lo);
  return s;
}

void stack_trim(const StackSlot& s, const char* below) {
  char* from = s.lo + kPageSize;
  char* to = reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(below) & ~(kPageSize - 1));
  if (to > from) madvise(from, std::size_t(to - from), MADV_DONTNEED);
}

void stack_release_all() {
  std::lock_guard<Lock> lk(arena.lock);
  for (auto& r : arena.res) {
#if MPG_ASAN
    __asan_unpoison_memory_region(r.base, r.bytes);
#endif
    munmap(r.base, r.bytes);
  }
  arena.res.clear();
  arena.chunk_slots = kFirstChunkSlots;
  arena.mprotect_guards = 0;
}

const char* stack_guard_mode() {
  switch (arena.mode) {
    case GuardMode::Madvise: return "madvise-guard";
    case GuardMode::Mprotect: return arena.warned ? "mprotect (budget exhausted: some stacks unguarded)" : "mprotect";
    case GuardMode::Unknown: break;
  }
  return "unknown";
}

}  // namespace mpg::detail
