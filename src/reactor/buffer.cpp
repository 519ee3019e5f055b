// buffer.cpp: the input buffer (see buffer.hpp).
#include "mpg/reactor/buffer.hpp"

#include <sys/uio.h>

#include <cstring>

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
  if (tail > max) tail = max;
  std::size_t spill = max - tail < scratch.size() ? max - tail : scratch.size();
  iovec iov[2] = {{data_.data() + write_, tail}, {scratch.data(), spill}};
  int cnt = spill > 0 ? 2 : 1;
  ssize_t n = ::readv(fd, iov, cnt);
  if (n <= 0) return n;
  std::size_t got = static_cast<std::size_t>(n);
  if (got <= tail) {
    write_ += got;
  } else {
    write_ += tail;
    append(scratch.data(), got - tail);
  }
  return n;
}

}  // namespace mpg::reactor
