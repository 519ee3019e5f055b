// model.hpp: mpg-httpd's Model layer (seed §2.1): the key-value state, the single source of
// truth. Two designs behind one interface, chosen with --kv:
//  - ShardedKv: 64 shards, each a std::mutex and a hash map. Callable from any thread, so it
//    serves all three servers (the reactor's handlers run on loop threads, not goroutines).
//  - ActorKv: one goroutine owns the map and serves requests from a channel (Go's "share memory
//    by communicating"). Only for handlers that run as goroutines (goroutine and hybrid models).
#pragma once
#include <array>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "mpg/mpg.hpp"

namespace httpd {

class Kv {
 public:
  virtual ~Kv() = default;
  virtual std::optional<std::string> get(const std::string& k) = 0;
  virtual void put(const std::string& k, std::string v) = 0;
  virtual bool del(const std::string& k) = 0;  // false: there was no such key
};

class ShardedKv final : public Kv {
 public:
  std::optional<std::string> get(const std::string& k) override {
    Shard& s = shard(k);
    std::lock_guard<std::mutex> lk(s.mu);
    auto it = s.map.find(k);
    if (it == s.map.end()) return std::nullopt;
    return it->second;
  }
  void put(const std::string& k, std::string v) override {
    Shard& s = shard(k);
    std::lock_guard<std::mutex> lk(s.mu);
    s.map[k] = std::move(v);
  }
  bool del(const std::string& k) override {
    Shard& s = shard(k);
    std::lock_guard<std::mutex> lk(s.mu);
    return s.map.erase(k) > 0;
  }

 private:
  static constexpr std::size_t kShards = 64;  // a power of two well above the core count
  struct alignas(64) Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::string> map;
  };
  Shard& shard(const std::string& k) { return shards_[std::hash<std::string>{}(k) & (kShards - 1)]; }
  std::array<Shard, kShards> shards_;
};

class ActorKv final : public Kv {
 public:
  ActorKv() : ops_(1024) {
    mpg::go([ops = ops_]() mutable {
      std::unordered_map<std::string, std::string> map;  // owned by this goroutine alone
      for (Op* op : ops) op->run(map);
    });
  }
  ~ActorKv() override { ops_.close(); }
  std::optional<std::string> get(const std::string& k) override {
    std::optional<std::string> out;
    call([&](auto& m) {
      auto it = m.find(k);
      if (it != m.end()) out = it->second;
    });
    return out;
  }
  void put(const std::string& k, std::string v) override {
    call([&](auto& m) { m[k] = std::move(v); });
  }
  bool del(const std::string& k) override {
    bool had = false;
    call([&](auto& m) { had = m.erase(k) > 0; });
    return had;
  }

 private:
  using Map = std::unordered_map<std::string, std::string>;
  struct Op {
    std::function<void(Map&)> fn;
    mpg::Chan<char> done{1};
    void run(Map& m) {
      fn(m);
      done.send(1);
    }
  };
  void call(std::function<void(Map&)> fn) {
    Op op{std::move(fn)};
    ops_.send(&op);
    op.done.recv();  // the op lives on this stack until the owner has run it
  }
  mpg::Chan<Op*> ops_;
};

}  // namespace httpd
