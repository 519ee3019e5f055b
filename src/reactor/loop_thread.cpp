// loop_thread.cpp: see loop_thread.hpp.
#include "reactor/loop_thread.hpp"

#include <pthread.h>
#include <sched.h>

#include <future>

namespace mpg::reactor::detail {

void LoopThread::start(Hook on_start, Hook on_exit, int cpu) {
  std::promise<EventLoop*> ready;
  auto fut = ready.get_future();
  // The promise moves into the thread: set_value may still be finishing when get() returns.
  thread_ = std::thread([ready = std::move(ready), on_start = std::move(on_start), on_exit = std::move(on_exit), cpu]() mutable {
    if (cpu >= 0) {
      // Pinning is advice: a CPU outside the allowed set leaves the thread where it was.
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    EventLoop loop;
    if (on_start) on_start(loop);
    ready.set_value(&loop);
    loop.run();
    if (on_exit) on_exit(loop);
  });
  loop_ = fut.get();
}

void LoopThread::stop() {
  if (!thread_.joinable()) return;
  loop_->stop();
  thread_.join();
  loop_ = nullptr;
}

}  // namespace mpg::reactor::detail
