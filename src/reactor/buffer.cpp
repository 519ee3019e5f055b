// buffer.cpp: the input buffer (see buffer.hpp).
#include "mpg/reactor/buffer.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "poll/sys.hpp"

namespace mpg::reactor {

void Buffer::retrieve(std::size_t n) {
  if (n >= readable()) {
    retrieve_all();
  } else {
    read_ += n;
  }
}

std::string Buffer::retrieve_as_string(std::size_t n) {
  if (n > readable()) n = readable();
  std::string s(peek(), n);
  retrieve(n);
  return s;
}

void Buffer::ensure_writable(std::size_t n) {
  if (data_.size() - write_ >= n) return;
  std::size_t live = readable();
  if (read_ > 0 && data_.size() - live >= n) {
    // Enough room once the consumed prefix is reclaimed: move the live bytes down.
    std::memmove(data_.data(), data_.data() + read_, live);
  } else {
    std::size_t want = data_.size() < kInitialBytes ? kInitialBytes : data_.size() * 2;
    if (want < live + n) want = live + n;
    std::vector<char> bigger(want);
    if (live > 0) std::memcpy(bigger.data(), data_.data() + read_, live);
    data_.swap(bigger);
  }
  read_ = 0;
  write_ = live;
}

void Buffer::append(const void* p, std::size_t n) {
  if (n == 0) return;
  ensure_writable(n);
  std::memcpy(data_.data() + write_, p, n);
  write_ += n;
}

ssize_t Buffer::read_from(int fd, std::span<char> scratch, std::size_t max) {
  if (data_.empty()) data_.resize(kInitialBytes);
  if (read_ == write_) read_ = write_ = 0;
  std::size_t tail = data_.size() - write_;
  // One read(2), never readv: the kernel's iovec import and iterator set-up cost ~150 ns per
  // call on this machine (perf, docs/reactor.md), a fifth of what a small request costs us in
  // user space. A roomy tail (or one that holds the whole budget) takes the bytes directly;
  // otherwise they land in the loop's scratch and are copied behind the live bytes (a copy of
  // a request's few hundred bytes is cheaper than the iovec).
  if (tail >= max || tail >= kDirectBytes || scratch.empty()) {
    if (tail == 0) {
      // Full, and no scratch: make room (a read of 0 bytes would look like EOF) the way an
      // append of one byte would, reclaiming the consumed prefix or growing by the usual rule.
      // Asking for more (a whole kInitialBytes beyond the live bytes) grew a buffer past that
      // rule's bound (fuzz_reactor_buffer: capacity 589 -> 2210 for 162 live + 1753 read).
      ensure_writable(1);
      tail = data_.size() - write_;
    }
    ssize_t n = sys::read(fd, data_.data() + write_, std::min(tail, max));
    if (n > 0) write_ += static_cast<std::size_t>(n);
    return n;
  }
  ssize_t n = sys::read(fd, scratch.data(), std::min(scratch.size(), max));
  if (n > 0) append(scratch.data(), static_cast<std::size_t>(n));
  return n;
}

}  // namespace mpg::reactor
