// timer_queue.hpp: the loop's general timers, a min-heap keyed by deadline and sequence number.
#pragma once
#include <cstdint>
#include <functional>
#include <queue>
#include <unordered_map>
#include <vector>

namespace mpg::reactor::detail {

// TimerQueue: run_after / run_every timers of one EventLoop; owned by the loop, loop thread
// only. Time is passed in (nanoseconds on any monotonic clock), so tests drive it with a fake
// clock. Cancel is lazy: the entry leaves the table at once and its heap node is skipped when it
// surfaces; the heap is rebuilt when skipped nodes outnumber live ones, so churn stays bounded.
class TimerQueue {
 public:
  using Callback = std::function<void()>;

  // add: schedules `cb` under `id` (unique, increasing: the loop hands them out) at `when_ns`,
  // then every `interval_ns` if that is > 0. Equal deadlines fire in id order.
  void add(std::uint64_t id, std::int64_t when_ns, std::int64_t interval_ns, Callback cb);
  // cancel: the timer will not fire again (also from inside its own callback); unknown ids and
  // ids that already fired are ignored. Returns whether a live timer was cancelled.
  bool cancel(std::uint64_t id);
  // run_due: fires every timer due at `now_ns`, in deadline order; a periodic timer is re-armed
  // at its previous deadline plus the interval (not now + interval, so it does not drift), or at
  // now + interval if it fell more than one interval behind. Returns how many fired.
  int run_due(std::int64_t now_ns);
  // next_deadline: the earliest live deadline, or -1 when empty.
  std::int64_t next_deadline();
  std::size_t size() const { return live_.size(); }
  std::size_t heap_size() const { return heap_.size(); }

 private:
  struct Node {
    std::int64_t when;
    std::uint64_t id;  // ids grow, so id breaks ties in insertion order
    bool operator>(const Node& o) const { return when != o.when ? when > o.when : id > o.id; }
  };
  struct Timer {
    std::int64_t when;
    std::int64_t interval;
    Callback cb;
  };
  void drop_stale_top();
  void maybe_compact();

  std::priority_queue<Node, std::vector<Node>, std::greater<Node>> heap_;
  std::unordered_map<std::uint64_t, Timer> live_;
};

}  // namespace mpg::reactor::detail
