// unique_fd.hpp: the one RAII type that closes a file descriptor.
#pragma once
#include <unistd.h>

#include <utility>

namespace mpg::poll {

// UniqueFd: sole owner of one file descriptor, closed on destruction; movable, not copyable.
// Any thread may use it, but only one at a time (it is a plain value).
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  // get: the descriptor, or -1 when empty.
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  // release: gives up ownership without closing.
  int release() { return std::exchange(fd_, -1); }
  // reset: closes the current descriptor (if any) and takes `fd`. close() is not retried on
  // EINTR: on Linux the descriptor is released even then, and a retry could close a reused number.
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace mpg::poll
