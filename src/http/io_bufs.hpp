// io_bufs.hpp: the buffers a connection needs only while it has data (a read buffer and the
// output being written), pooled per thread, so connections between requests hold none. Shared
// by the goroutine and hybrid servers.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace mpg::http::detail {

// kReadBytes: a connection's read buffer (Go's net/http reads through a 4 KiB bufio.Reader).
constexpr std::size_t kReadBytes = 4096;
// kPoolMax: idle IoBufs kept per thread.
inline constexpr std::size_t kPoolMax = 16;

// IoBufs: what a connection needs only while it has data: the read buffer and the output.
struct IoBufs {
  char in[kReadBytes];
  std::string out;
};

struct IoPool {
  std::vector<IoBufs*> free;
  ~IoPool() {
    for (IoBufs* b : free) delete b;
  }
};

// io_pool: the calling thread's pool. noinline: the goroutine may run on another thread by the
// next call, so the thread_local's address must not be cached across a switch.
__attribute__((noinline)) inline IoPool& io_pool() {
  thread_local IoPool p;
  return p;
}

inline IoBufs* take_bufs() {
  IoPool& p = io_pool();
  if (p.free.empty()) return new IoBufs;
  IoBufs* b = p.free.back();
  p.free.pop_back();
  return b;
}

inline void give_bufs(IoBufs* b, std::size_t retain) {
  b->out.clear();
  if (b->out.capacity() > retain) std::string().swap(b->out);
  IoPool& p = io_pool();
  if (p.free.size() >= kPoolMax) {
    delete b;
    return;
  }
  p.free.push_back(b);
}

}  // namespace mpg::http::detail
