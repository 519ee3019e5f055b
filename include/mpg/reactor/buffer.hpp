// buffer.hpp: a connection's contiguous input buffer.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mpg::reactor {

// Buffer: bytes received and not yet consumed, contiguous so a parser sees one view; owned by
// its Connection, loop thread only. A read goes into the free tail when it is roomy, else into the
// loop's scratch area and is then appended: an idle connection keeps a small buffer and a burst
// still takes one syscall.
class Buffer {
 public:
  // kInitialBytes: a fresh buffer's capacity; a 512-byte request and its neighbours fit.
  static constexpr std::size_t kInitialBytes = 2048;
  // kDirectBytes: a free tail this large takes a read directly (no copy out of the scratch).
  static constexpr std::size_t kDirectBytes = 16 * 1024;

  std::size_t readable() const { return write_ - read_; }
  bool empty() const { return readable() == 0; }
  const char* peek() const { return data_.data() + read_; }
  std::string_view view() const { return {peek(), readable()}; }
  std::size_t capacity() const { return data_.size(); }

  // retrieve: consumes n bytes (n <= readable()).
  void retrieve(std::size_t n);
  void retrieve_all() { read_ = write_ = 0; }
  std::string retrieve_as_string(std::size_t n);
  void append(std::string_view s) { append(s.data(), s.size()); }
  void append(const void* p, std::size_t n);

  // read_from: one read(2) of at most `max` (>= 1) bytes from `fd`: into the free tail when it
  // has kDirectBytes or `max` or `scratch` is empty (the buffer grows first if it is full), else
  // into `scratch` and then appended. Returns bytes read, 0 on EOF, -1 with errno set.
  ssize_t read_from(int fd, std::span<char> scratch, std::size_t max);
  // release_storage / adopt_storage: an empty buffer hands its memory back (to its loop's spare
  // list: an idle connection then holds none) and takes some again before the next read.
  std::vector<char> release_storage() {
    read_ = write_ = 0;
    return std::move(data_);
  }
  void adopt_storage(std::vector<char>&& v) {
    data_ = std::move(v);
    read_ = write_ = 0;
  }

 private:
  void ensure_writable(std::size_t n);

  std::vector<char> data_;
  std::size_t read_ = 0;
  std::size_t write_ = 0;
};

}  // namespace mpg::reactor
