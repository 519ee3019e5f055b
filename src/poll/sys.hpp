// sys.hpp: the socket calls on the request path, made without glibc's cancellation wrapper.
//
// glibc's read, send and writev are pthread cancellation points: each call brackets the syscall
// with __pthread_enable_asynccancel and __pthread_disable_asynccancel, an atomic
// compare-and-swap on the thread's cancel state before and another after. mpg never cancels a
// thread (a goroutine is not a pthread, and neither a loop thread nor an M is ever
// pthread_cancel'ed), so on x86-64 these make the syscall directly, as Go's runtime does; the
// measurement that kept them is in docs/net.md. Same contract as glibc's: a count, or -1 with
// errno set. Elsewhere, and under a sanitizer (whose interceptors check the buffers and, for
// TSan, see the happens-before a socket carries), they are glibc's.
#pragma once

#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

// MPG_SYS_RAW: 1 where the calls below go straight to the kernel (GCC names a sanitizer with a
// macro, clang with __has_feature).
#if defined(__x86_64__) && defined(__linux__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define MPG_SYS_RAW 1
#else
#define MPG_SYS_RAW 0
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#undef MPG_SYS_RAW
#define MPG_SYS_RAW 0
#endif
#endif

namespace mpg::sys {

#if MPG_SYS_RAW
inline long syscall3(long nr, long a, long b, long c) {
  long ret;
  asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
}

inline long syscall6(long nr, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 asm("r10") = d;
  register long r8 asm("r8") = e;
  register long r9 asm("r9") = f;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return ret;
}

// result: the kernel's return value as glibc reports it.
inline ssize_t result(long r) {
  if (r < 0 && r > -4096) {
    errno = int(-r);
    return -1;
  }
  return r;
}

inline ssize_t read(int fd, void* buf, std::size_t n) {
  return result(syscall3(SYS_read, fd, reinterpret_cast<long>(buf), static_cast<long>(n)));
}
inline ssize_t send(int fd, const void* buf, std::size_t n, int flags) {
  return result(syscall6(SYS_sendto, fd, reinterpret_cast<long>(buf), static_cast<long>(n), flags, 0, 0));
}
inline ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  return result(syscall3(SYS_writev, fd, reinterpret_cast<long>(iov), cnt));
}
#else
using ::read;
using ::send;
using ::writev;
#endif

}  // namespace mpg::sys
