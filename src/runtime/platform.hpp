// platform.hpp: the few OS and CPU primitives the runtime needs: futex, clock, cpu relax, and
// the sanitizer hooks for stack switching. Linux x86-64/aarch64 only.
#pragma once
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#define MPG_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define MPG_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MPG_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define MPG_TSAN 1
#endif
#endif

namespace mpg::detail {

// nanotime: CLOCK_MONOTONIC in ns, the clock of every timer and deadline (vDSO, ~20 ns).
inline std::int64_t nanotime() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// coarse_nanotime: CLOCK_MONOTONIC_COARSE in ns (the kernel tick's resolution, ~5 ns to read
// here): the goroutine dump's wait times.
inline std::int64_t coarse_nanotime() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// coarse_lag_bound: how far CLOCK_MONOTONIC_COARSE may trail CLOCK_MONOTONIC on a running CPU:
// twice its resolution (the kernel tick), read once.
inline std::int64_t coarse_lag_bound() {
  static const std::int64_t bound = [] {
    timespec res{};
    clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    std::int64_t ns = std::int64_t(res.tv_sec) * 1000000000 + res.tv_nsec;
    return 2 * (ns > 0 ? ns : 10'000'000);
  }();
  return bound;
}

// due: whether a timer for `when` (a nanotime, not 0) is due. The coarse clock never runs ahead
// of the precise one and trails it by at most a tick, so a timer later than the coarse time plus
// that bound is not due yet, and the precise clock (~20-25 ns through the vDSO here, ~5 for the
// coarse one) is read only for a timer that close. The scheduler asks on every switch while its
// P has a timer, and a server with a deadline on each connection always has one: a far timer
// cost ~20 ns a switch (a channel round trip at procs=1: 88 -> 148 ns with a timer an hour
// away). *now gets the precise time when it was read, else 0.
inline bool due(std::int64_t when, std::int64_t* now = nullptr) {
  if (now) *now = 0;
  if (when > coarse_nanotime() + coarse_lag_bound()) return false;
  std::int64_t t = nanotime();
  if (now) *now = t;
  return when <= t;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// futex_wait: sleeps while *addr == val, at most timeout_ns (<0: forever). Spurious returns happen.
inline void futex_wait(std::atomic<std::uint32_t>* addr, std::uint32_t val, std::int64_t timeout_ns = -1) {
  timespec ts, *tp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    tp = &ts;
  }
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAIT_PRIVATE, val, tp, nullptr, 0);
}
inline void futex_wake(std::atomic<std::uint32_t>* addr, int n) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAKE_PRIVATE, n, nullptr, nullptr, 0);
}

// FastRand: wyrand, per M; for steal order, select order and the 1-in-N sampling.
struct FastRand {
  std::uint64_t s;
  std::uint64_t next() {
    s += 0xa0761d6478bd642full;
    __uint128_t t = __uint128_t(s) * (s ^ 0xe7037ed1a0b428dbull);
    return std::uint64_t(t >> 64) ^ std::uint64_t(t);
  }
  std::uint32_t below(std::uint32_t n) { return std::uint32_t((std::uint64_t(std::uint32_t(next())) * n) >> 32); }
};

}  // namespace mpg::detail
