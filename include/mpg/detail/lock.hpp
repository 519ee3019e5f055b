// detail/lock.hpp: the runtime's internal mutex (Go's runtime.mutex): spins briefly, then sleeps
// on a futex. It parks the OS thread, never a goroutine, so it guards only short critical
// sections in which no goroutine switch happens (channels, timer heaps, wait lists, the
// scheduler's global state). Public only because mpg's sync types embed it.
#pragma once
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace mpg::detail {

inline void lock_pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}
inline void lock_futex_wait(std::atomic<std::uint32_t>* a, std::uint32_t v) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(a), FUTEX_WAIT_PRIVATE, v, nullptr, nullptr, 0);
}
inline void lock_futex_wake(std::atomic<std::uint32_t>* a) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(a), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

// lock_sleep_begin / lock_sleep_end (runtime/cpuwait.cpp): bracket a contended Lock's futex sleep
// as a sleep of the calling M, so that the runtime's measure of waiting for a CPU does not read a
// thread asleep in a Lock as one waiting to run. begin returns whether it bracketed (not outside
// an M, nor inside another sleep of the M: the poller takes a Lock within its own).
bool lock_sleep_begin() noexcept;
void lock_sleep_end() noexcept;

// tls_runtime_locks: runtime Locks the calling thread holds. A Lock is never held across a
// goroutine switch, so a per-thread count is exact; the preemption signal handler refuses to
// preempt while it is non-zero. constinit: no TLS wrapper call on the lock path.
inline constinit thread_local std::uint32_t tls_runtime_locks __attribute__((tls_model("initial-exec"))) = 0;

// Lock: three states (Drepper's "Futexes are tricky", mutex 3): 0 free, 1 held, 2 held with
// sleepers. Meets Lockable, so std::lock_guard / std::unique_lock work.
class Lock {
 public:
  void lock() {
    tls_runtime_locks++;  // counted before the acquiring CAS: no instant holds it uncounted
    std::uint32_t c = 0;
    if (state_.compare_exchange_strong(c, 1, std::memory_order_acquire, std::memory_order_relaxed)) return;
    lock_slow(c);
  }
  bool try_lock() {
    tls_runtime_locks++;
    std::uint32_t c = 0;
    if (state_.compare_exchange_strong(c, 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    tls_runtime_locks--;
    return false;
  }
  void unlock() {
    if (state_.exchange(0, std::memory_order_release) == 2) lock_futex_wake(&state_);
    tls_runtime_locks--;
  }

 private:
  void lock_slow(std::uint32_t c) {
    // Spin a little first: the holder runs on another CPU for tens of ns.
    for (int i = 0; i < 64; i++) {
      for (int k = 0; k < 4; k++) lock_pause();
      c = state_.load(std::memory_order_relaxed);
      if (c == 0) {
        if (state_.compare_exchange_weak(c, 1, std::memory_order_acquire, std::memory_order_relaxed)) return;
      }
    }
    if (c != 2) c = state_.exchange(2, std::memory_order_acquire);
    if (c == 0) return;
    bool bracketed = lock_sleep_begin();
    while (c != 0) {
      lock_futex_wait(&state_, 2);
      c = state_.exchange(2, std::memory_order_acquire);
    }
    if (bracketed) lock_sleep_end();
  }
  std::atomic<std::uint32_t> state_{0};
};

}  // namespace mpg::detail
