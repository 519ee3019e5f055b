// lock.hpp: the runtime's thread-level locks: Lock (in mpg/detail/lock.hpp) and Note.
#pragma once
#include <atomic>
#include <cstdint>

#include "mpg/detail/lock.hpp"
#include "runtime/platform.hpp"

namespace mpg::detail {

// Note: a one-shot event (Go's note): sleep until wake, then clear before reuse. Owned by one
// M (its park note) or by the poller.
//
// States: 0 empty, 1 woken, 2 a sleeper is (about to be) in futex_wait. A sleeper first spins
// for up to spin_ns_, so a wake that comes soon after (a spinner that just gave up, woken for
// the next channel hand-off) costs the waker one atomic exchange instead of a futex syscall,
// which on a virtual machine also costs an inter-processor interrupt. Only a wake that finds
// state 2 makes the syscall.
//
// The spin adapts to how soon the wakes come (as glibc's adaptive mutex does to lock hold
// times): a sleep that ended within kNoteSpinNs, spinning or not, sets the next spin to
// kNoteSpinNs; a longer one halves it, down to none. While it is none, every kNoteProbeEvery-th
// sleep spins in full anyway: a wake that follows a futex sleep is measured with the kernel's
// wake-up latency in it (tens of us on a VM), so without the probe a spin once lost might never
// come back. So Ms that are woken at once (a channel ping-pong across two Ps) keep spinning,
// while an M whose wakes come rarely (a server's second P between bursts of network events)
// stops burning up to 20 us of a core at every park, time taken from whatever else runs there
// (the load generator, in the showdown).
class Note {
 public:
  // kNoteSpinNs: the longest a sleeper polls before it sleeps in the kernel.
  static constexpr std::int64_t kNoteSpinNs = 20'000;
  // kNoteMinSpinNs: below this the spin is dropped altogether.
  static constexpr std::int64_t kNoteMinSpinNs = 1'000;
  // kNoteProbeEvery: with no spin left, one sleep in this many spins in full.
  static constexpr std::uint32_t kNoteProbeEvery = 16;

  void clear() { key_.store(0, std::memory_order_relaxed); }
  void wake() {
    if (key_.exchange(1, std::memory_order_acq_rel) == 2) futex_wake(&key_, 1);
  }
  void sleep() { sleep_until(-1); }
  // sleep_for: returns true if woken, false on timeout.
  bool sleep_for(std::int64_t ns) { return sleep_until(nanotime() + ns); }
  // spin_ns: the current spin budget; sleeping: a sleeper is past its spin, in (or entering)
  // the futex wait (both for tests).
  std::int64_t spin_ns() const { return spin_ns_; }
  bool sleeping() const { return key_.load(std::memory_order_acquire) == 2; }

 private:
  bool sleep_until(std::int64_t deadline) {
    std::int64_t start = nanotime();
    bool woken = wait(start, deadline);
    std::int64_t took = nanotime() - start;
    if (woken && took <= kNoteSpinNs) {
      spin_ns_ = kNoteSpinNs;
    } else {
      spin_ns_ /= 2;
      if (spin_ns_ < kNoteMinSpinNs) spin_ns_ = 0;
    }
    return woken;
  }
  bool wait(std::int64_t now, std::int64_t deadline) {
    std::int64_t spin = spin_ns_ > 0 || ++probe_ % kNoteProbeEvery != 0 ? spin_ns_ : kNoteSpinNs;
    std::int64_t spin_end = now + spin;
    if (deadline >= 0 && spin_end > deadline) spin_end = deadline;
    if (spin > 0) {
      while (key_.load(std::memory_order_acquire) != 1) {
        for (int i = 0; i < 64; i++) cpu_relax();
        if (nanotime() >= spin_end) break;
      }
    }
    for (;;) {
      std::uint32_t k = key_.load(std::memory_order_acquire);
      if (k == 1) return true;
      if (k == 0 && !key_.compare_exchange_strong(k, 2, std::memory_order_acq_rel)) continue;
      std::int64_t left = -1;
      if (deadline >= 0) {
        left = deadline - nanotime();
        if (left <= 0) {
          // Time is up: withdraw the sleeper mark unless a wake slipped in.
          std::uint32_t two = 2;
          if (key_.compare_exchange_strong(two, 0, std::memory_order_acq_rel)) return false;
          continue;
        }
      }
      futex_wait(&key_, 2, left);
    }
  }
  std::int64_t spin_ns_ = kNoteSpinNs;  // owner: the sleeper (one at a time)
  std::uint32_t probe_ = 0;             // sleeps with no spin (owner: the sleeper)
  std::atomic<std::uint32_t> key_{0};
};

}  // namespace mpg::detail
