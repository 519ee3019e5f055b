// timer_queue.cpp: the heap of general timers (see timer_queue.hpp).
#include "reactor/timer_queue.hpp"

#include <utility>

namespace mpg::reactor::detail {

void TimerQueue::add(std::uint64_t id, std::int64_t when_ns, std::int64_t interval_ns, Callback cb) {
  live_.emplace(id, Timer{when_ns, interval_ns, std::move(cb)});
  heap_.push(Node{when_ns, id});
}

bool TimerQueue::cancel(std::uint64_t id) {
  bool erased = live_.erase(id) > 0;
  if (erased) maybe_compact();
  return erased;
}

void TimerQueue::drop_stale_top() {
  // A node is stale if its timer was cancelled or re-armed (the table holds another deadline).
  while (!heap_.empty()) {
    auto it = live_.find(heap_.top().id);
    if (it != live_.end() && it->second.when == heap_.top().when) return;
    heap_.pop();
  }
}

void TimerQueue::maybe_compact() {
  // Rebuild when stale nodes are more than half of the heap: O(n) now and then instead of a heap
  // that grows with every cancelled timer under churn.
  if (heap_.size() < 64 || heap_.size() < 2 * live_.size()) return;
  std::vector<Node> nodes;
  nodes.reserve(live_.size());
  for (const auto& [id, t] : live_) nodes.push_back(Node{t.when, id});
  heap_ = decltype(heap_)(std::greater<Node>{}, std::move(nodes));
}

int TimerQueue::run_due(std::int64_t now_ns) {
  int fired = 0;
  for (;;) {
    drop_stale_top();
    if (heap_.empty() || heap_.top().when > now_ns) break;
    Node n = heap_.top();
    heap_.pop();
    auto it = live_.find(n.id);
    // Move the callback out while it runs: it may add or cancel timers (rehashing live_), or
    // cancel itself.
    Callback cb = std::move(it->second.cb);
    std::int64_t interval = it->second.interval;
    if (interval <= 0) live_.erase(it);
    cb();
    fired++;
    if (interval > 0) {
      auto again = live_.find(n.id);
      if (again == live_.end()) continue;  // cancelled by its own callback
      std::int64_t next = n.when + interval;
      if (next <= now_ns) next = now_ns + interval;
      again->second.when = next;
      again->second.cb = std::move(cb);
      heap_.push(Node{next, n.id});
    }
  }
  return fired;
}

std::int64_t TimerQueue::next_deadline() {
  drop_stale_top();
  return heap_.empty() ? -1 : heap_.top().when;
}

}  // namespace mpg::reactor::detail
