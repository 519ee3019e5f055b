// stack.hpp: goroutine stacks, carved from large lazily committed reservations.
//
// A stack slot is [guard page | usable stack ... | closure | G] from low to high addresses. The
// G struct and the closure sit in the top page, so a parked goroutine whose frames are shallow
// costs one page of RSS. Slots are never unmapped while the runtime runs: a G lives in its
// slot, and G memory must stay valid for stale timer entries and the goroutine dump (Go keeps
// allgs forever for the same reason). Pooled slots give back the pages a goroutine touched
// below kKeepBytes (MADV_DONTNEED).
//
// Guards: madvise(MADV_GUARD_INSTALL) (Linux 6.13+) puts a guard page in without splitting the
// mapping, so a million stacks cost a few hundred mappings. On older kernels the fallback is
// mprotect(PROT_NONE), which splits a mapping in up to three: each guarded stack then costs two
// mappings of vm.max_map_count (65,530 by default), so after a budget of guarded stacks the
// rest come without a guard page, announced once on stderr.
#pragma once
#include <cstddef>
#include <cstdint>

namespace mpg::detail {

inline constexpr std::size_t kPageSize = 4096;
inline constexpr std::size_t kDefaultStackSize = 256 * 1024;
inline constexpr std::size_t kMinStackSize = 16 * 1024;
// kKeepBytes: pooled stacks keep this many touched bytes at the top (the G page and the first
// frames); deeper touched pages are returned to the kernel.
inline constexpr std::size_t kKeepBytes = 16 * 1024;

// StackSlot: one stack's memory. lo is the guard page; usable memory is [lo + kPageSize, lo + size).
struct StackSlot {
  char* lo = nullptr;
  std::size_t size = 0;
  bool guarded = false;
  char* hi() const { return lo + size; }
};

// stack_round: the slot size for a requested stack size.
std::size_t stack_round(std::size_t size);
// stack_carve: a new slot of `size` bytes (already rounded). Thread-safe; throws std::bad_alloc.
StackSlot stack_carve(std::size_t size);
// stack_trim: gives back the pages in [lo + guard, below) (below is page-aligned down).
void stack_trim(const StackSlot& s, const char* below);
// stack_release_all: unmaps every reservation; only at the end of run().
void stack_release_all();
// stack_guard_mode: "madvise-guard", "mprotect" or "none (budget exhausted)".
const char* stack_guard_mode();

}  // namespace mpg::detail
