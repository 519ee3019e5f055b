// g.hpp: G, the goroutine: a stackful coroutine and the state the scheduler keeps of it.
#pragma once
#include <atomic>
#include <cstdint>
#include <source_location>

#include "mpg/detail/spawn.hpp"
#include "runtime/context.hpp"
#include "runtime/stack.hpp"
#include "runtime/timers.hpp"

namespace mpg::detail {

struct M;
struct P;

// GStatus: who owns a G in each state (Go's _Gidle ... _Gdead). Transitions are listed beside
// each state; set_status() is the only writer.
enum class GStatus : std::uint8_t {
  Idle,      // in a free pool (P's or global), stack owned by the pool; -> Runnable via spawn
  Runnable,  // on a run queue (local ring, runnext or global), not executing; -> Running
  Running,   // executing on M g->m, which owns the stack; -> Runnable, Waiting, Dead
  Waiting,   // parked; owned by whoever holds its wake-up (a channel wait queue, a timer, a
             // semaphore); exactly one party calls ready(); -> Runnable
  Dead,      // finished, on its way to a free pool; -> Idle
  Syscall,   // in mpg::blocking on M g->m, which owns the stack; its P may be retaken; -> Running,
             // or Runnable (no P on return: queued globally)
};

// WaitReason: why a Waiting G waits, as the goroutine dump prints it (Go's waitReason strings).
enum class WaitReason : std::uint8_t {
  None,
  ChanReceive,
  ChanSend,
  ChanReceiveNil,
  Select,
  SelectNoCases,
  Sleep,
  Mutex,
  Semacquire,
  WaitGroup,
  CondWait,
  IOWait,
  Syscall,
  LockedThread,
};
const char* wait_reason_string(WaitReason r);

// G: one goroutine. Lives in the top page of its own stack slot; never freed while the runtime
// runs (see stack.hpp). Fields say what guards them.
struct alignas(64) G {
  // --- scheduling (hot) ---
  Ctx ctx = nullptr;             // saved context while not Running; written by the M that switched out
  M* m = nullptr;                // M running it (owner: that M)
  // lowwater: the lowest saved SP seen at a switch (for trimming when pooled). Here, not with the
  // spawn's fields: every switch-out on a parking G and every exit read it, and in the second
  // line it was a cache miss per park for a G that had slept (perf: docs/runtime.md).
  std::uintptr_t lowwater = 0;
  G* schedlink = nullptr;        // link in a GQueue (owner: the queue's lock or owner)
  std::uint64_t id = 0;          // goroutine id; 0 while Idle
  // lockedm: the M it is wired to (lock_os_thread, or a preemption's wiring; owner: the G). Here,
  // not with lock_count: every switch reads it (direct_next), and in a line of its own it was a
  // cache miss per switch beside the one begin_run pays for this line (perf: docs/runtime.md).
  M* lockedm = nullptr;
  std::atomic<GStatus> status{GStatus::Idle};
  bool started = false;          // the closure has begun running (owner: the running M)
  std::atomic<bool> preempt{false};  // yield at the next runtime entry (set by sysmon)
  bool async_wired = false;      // wired to its M after a preemption (SyscallNoP), until its next switch
  bool async_stopped = false;    // left the CPU by a preemption signal; cleared when it runs again
  bool stack_released = false;   // pooled, and its stack below the top page given back (gfree_scavenge)
  bool default_stack = false;    // stack.size is the run's default (set when carved; read when pooled)
  // io_woken: a started G made runnable by the netpoller (inject_glist), cleared when it runs: it
  // waited for I/O, and begin_run, starting it, warms the stack of the G queued after it by this
  // one's depth (a poll readies a batch; their stacks are likely out of cache).
  bool io_woken = false;
  std::uint32_t nopreempt = 0;   // mpg::NoPreempt depth: refuse asynchronous preemption
  std::uint32_t syscall_depth = 0;  // nesting of mpg::blocking (owner: the G)

  // --- the second cache line: everything else a spawn writes (static_asserts below) ---
  void (*invoke)(void*) = nullptr;
  void (*destroy)(void*) = nullptr;
  void* closure = nullptr;       // small_closure, closure_area(), or (boxed) small_closure
  M* last_m = nullptr;           // the M it last ran on; written only under MPG_DEBUG=migrate
  std::uint64_t parent_id = 0;
  std::source_location created_at{};
  alignas(16) unsigned char small_closure[kSmallClosureBytes];  // closures of one or two words

  // --- stack (written when carved; read when pooled) ---
  StackSlot stack;
  Fiber fiber;

  // --- parking (owner: the G itself while Running, the waker after that) ---
  WaitReason wait_reason = WaitReason::None;
  std::int64_t wait_since = 0;   // nanotime() when it parked
  void* param = nullptr;         // set by the waker (the Sudog that completed a select)
  // select_done: select's claim word: token<<1 | claimed. The first waker CASes the low bit.
  std::atomic<std::uint64_t> select_done{0};
  std::uint64_t select_gen = 0;
  TimerNode timer;               // sleep and select-timeout timer of this G

  // --- lock_os_thread (owner: the G; lockedm is in the first line) ---
  std::uint32_t lock_count = 0;

  G* alllink = nullptr;          // all Gs ever carved, for the dump (append-only, under allg lock)

  // set_status: the one writer of status; a transition from any other state is a runtime bug
  // (fatal). Inline: several run per channel hand-off.
  void set_status(GStatus from, GStatus to) {
    if (status.load(std::memory_order_relaxed) != from) [[unlikely]] bad_status(from, to);
    status.store(to, std::memory_order_release);
  }
  [[noreturn]] void bad_status(GStatus from, GStatus to) const;
  char* closure_area() const;    // where the closure lives (just below the G)
  // stack_hi: stack.hi() without reading `stack` (a line of its own): the G ends its slot.
  char* stack_hi() const { return reinterpret_cast<char*>(const_cast<G*>(this)) + sizeof(G); }
};
static_assert(__builtin_offsetof(G, default_stack) < 64 && __builtin_offsetof(G, syscall_depth) < 64 &&
                  __builtin_offsetof(G, lockedm) < 64 && __builtin_offsetof(G, io_woken) < 64 &&
                  __builtin_offsetof(G, lowwater) < 64,
              "the flags a spawn, a switch and an exit touch must stay in the G's first cache line");
// (Where std::source_location is not one pointer, as the fuzz build's stand-in for clang 14,
// the second line overflows into the third: slower spawns, same behaviour.)
static_assert(sizeof(std::source_location) != sizeof(void*) ||
                  (__builtin_offsetof(G, invoke) == 64 && __builtin_offsetof(G, small_closure) + kSmallClosureBytes == 128),
              "the fields a spawn writes must fill the G's second cache line and no other");

}  // namespace mpg::detail
