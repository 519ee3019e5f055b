// worker.cpp: one loop's connection table and idle wheel (see worker.hpp).
#include "reactor/worker.hpp"

#include <vector>

namespace mpg::reactor::detail {

void RateLog::log(EventLoop::Clock::time_point now, const std::string& line) {
  if (now < next_) {
    suppressed_++;
    return;
  }
  std::string out = line;
  if (suppressed_ > 0) out += " (" + std::to_string(suppressed_) + " similar suppressed)";
  suppressed_ = 0;
  next_ = now + cfg_.log_interval;
  counters_.bump(counters_.log_lines);
  if (cfg_.log) {
    cfg_.log(out);
  } else {
    std::fprintf(stderr, "mpg reactor: %s\n", out.c_str());
  }
}

void Worker::attach(EventLoop& loop) {
  loop_ = &loop;
  if (cfg_.idle_timeout.count() > 0) {
    auto tick = cfg_.wheel_tick.count() > 0 ? cfg_.wheel_tick : std::chrono::milliseconds(1000);
    std::size_t span = static_cast<std::size_t>(cfg_.idle_timeout / tick) + 2;
    wheel_ = std::make_unique<TimingWheel>(span + 1);
    loop.run_every(tick, [this] { on_tick(); });
  }
}

void Worker::adopt(poll::UniqueFd fd, const sockaddr_storage& peer, std::uint64_t id) {
  loop_->assert_in_loop_thread("Worker::adopt");
  auto c = std::make_unique<Connection>(*this, id, std::move(fd), peer);
  Connection& ref = *c;
  conns_.emplace(id, std::move(c));
  open_.fetch_add(1, std::memory_order_release);
  counters_.bump(counters_.accepted);
  if (wheel_) {
    auto tick = cfg_.wheel_tick.count() > 0 ? cfg_.wheel_tick : std::chrono::milliseconds(1000);
    wheel_->schedule(id, static_cast<std::size_t>((cfg_.idle_timeout + tick - std::chrono::milliseconds(1)) / tick));
  }
  ref.start();
}

void Worker::release(Connection& c) {
  loop_->assert_in_loop_thread("Worker::release");
  auto it = conns_.find(c.id());
  if (it == conns_.end()) return;
  std::unique_ptr<Connection> owned = std::move(it->second);
  conns_.erase(it);
  open_.fetch_sub(1, std::memory_order_release);
  counters_.bump(counters_.closed);
  loop_->destroy_later(std::move(owned));
}

Connection* Worker::find(std::uint64_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second.get();
}

void Worker::on_tick() {
  // Each due id is closed if its last input is older than the timeout, else re-filed for the
  // ticks it has left (rounded up, so it never closes early).
  auto tick = cfg_.wheel_tick.count() > 0 ? cfg_.wheel_tick : std::chrono::milliseconds(1000);
  auto now = EventLoop::Clock::now();
  for (std::uint64_t id : wheel_->advance()) {
    Connection* c = find(id);
    if (c == nullptr) continue;
    auto left = c->last_input() + cfg_.idle_timeout - now;
    if (left <= std::chrono::nanoseconds::zero()) {
      counters_.bump(counters_.idle_closes);
      c->force_close();
    } else {
      wheel_->schedule(id, static_cast<std::size_t>((left + tick - std::chrono::nanoseconds(1)) / tick));
    }
  }
}

void Worker::for_each(const std::function<void(Connection&)>& fn) {
  // A snapshot first: fn may close a connection, which leaves the table (the Connection itself
  // lives until the loop's batch ends, so the pointers stay good).
  std::vector<Connection*> all;
  all.reserve(conns_.size());
  for (auto& [id, c] : conns_) all.push_back(c.get());
  for (Connection* c : all) fn(*c);
}

void Worker::drain_all() {
  for_each([](Connection& c) { c.shutdown(); });
}

void Worker::close_all() {
  for_each([](Connection& c) { c.force_close(); });
}

void Worker::detach() {
  close_all();
  wheel_.reset();
}

}  // namespace mpg::reactor::detail
