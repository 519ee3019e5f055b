// once.hpp: mpg::Once, Go's sync.Once: f runs exactly once; concurrent callers park until it
// has returned. As in Go, an f that throws still counts as done.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>

#include "mpg/mutex.hpp"

namespace mpg {

class Once {
 public:
  template <class F>
  void call(F&& f) {
    if (done_.load(std::memory_order_acquire)) return;
    std::lock_guard<Mutex> lk(m_);
    if (done_.load(std::memory_order_relaxed)) return;
    struct Mark {
      std::atomic<std::uint32_t>& d;
      ~Mark() { d.store(1, std::memory_order_release); }
    } mark{done_};
    f();
  }
  bool done() const { return done_.load(std::memory_order_acquire) != 0; }

 private:
  std::atomic<std::uint32_t> done_{0};
  Mutex m_;
};

}  // namespace mpg
