// rate_limiter.cpp: the per-client table and the 429 middleware.
#include "mpg/kit/rate_limiter.hpp"

#include <bit>
#include <functional>
#include <mutex>
#include <stdexcept>

#include "mpg/detail/lock.hpp"
#include "mpg/kit/refusal.hpp"
#include "mpg/kit/registry.hpp"

namespace mpg::kit {

// Way: one client's bucket; key 0 marks an empty way. Guarded by its Set's lock.
struct Way {
  std::uint64_t key = 0;
  std::int64_t full_at = BucketMath::kLongAgo;
};

// Set: kWays ways and their lock, on two cache lines of their own.
struct alignas(128) ClientBuckets::Set {
  mutable mpg::detail::Lock lock;
  Way ways[kWays];
};

namespace {

using Guard = std::lock_guard<mpg::detail::Lock>;

// key_hash: the key's 64-bit hash, never 0 (the empty way's mark). std::hash of a string_view
// is a Murmur-style byte hash; the finalizer (splitmix64's) spreads it over the set index bits.
std::uint64_t key_hash(std::string_view key) {
  std::uint64_t h = std::hash<std::string_view>{}(key);
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h == 0 ? 1 : h;
}

std::size_t set_count(std::size_t max_clients) {
  std::size_t sets = (max_clients + ClientBuckets::kWays - 1) / ClientBuckets::kWays;
  return std::bit_ceil(sets < 1 ? std::size_t(1) : sets);
}

}  // namespace

ClientBuckets::ClientBuckets(Rate r, std::size_t max_clients)
    : math_(r), mask_(set_count(max_clients) - 1), sets_(std::make_unique<Set[]>(mask_ + 1)) {
  static_assert(sizeof(Set) == 128, "a set is two cache lines");
}

ClientBuckets::~ClientBuckets() = default;

ClientBuckets::Set& ClientBuckets::set_for(std::uint64_t hash) const {
  // The high bits pick the set, so the stored key's low bits are not all equal within a set.
  return sets_[(hash >> 32 ^ hash) & mask_];
}

Decision ClientBuckets::take(std::string_view key, TimePoint now) {
  std::uint64_t h = key_hash(key);
  std::int64_t t = to_ns(now);
  Set& s = set_for(h);
  Guard g(s.lock);
  Way* victim = nullptr;  // an empty way, else a refilled one, else the one closest to full
  for (Way& w : s.ways) {
    if (w.key == h) {
      std::int64_t next = 0;
      Decision d = math_.admit(w.full_at, t, 1, &next);
      if (d.allowed) w.full_at = next;
      return d;
    }
    if (!victim || (victim->key != 0 && (w.key == 0 || w.full_at < victim->full_at))) victim = &w;
  }
  if (victim->key != 0 && victim->full_at > t) evictions_.inc();
  std::int64_t next = 0;
  Decision d = math_.admit(BucketMath::kLongAgo, t, 1, &next);  // a full bucket: allowed
  victim->key = h;
  victim->full_at = next;
  return d;
}

double ClientBuckets::tokens(std::string_view key, TimePoint now) const {
  std::uint64_t h = key_hash(key);
  const Set& s = set_for(h);
  Guard g(s.lock);
  for (const Way& w : s.ways)
    if (w.key == h) return math_.tokens(w.full_at, to_ns(now));
  return math_.tokens(BucketMath::kLongAgo, to_ns(now));
}

std::size_t ClientBuckets::capacity() const { return (mask_ + 1) * kWays; }

std::size_t ClientBuckets::size() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i <= mask_; i++) {
    Guard g(sets_[i].lock);
    for (const Way& w : sets_[i].ways) n += w.key != 0;
  }
  return n;
}

RateLimiter::RateLimiter(RateLimitConfig config) : config_(std::move(config)) {
  if (config_.server.enabled()) server_ = std::make_unique<TokenBucket>(config_.server);
  if (config_.per_client.enabled())
    clients_ = std::make_unique<ClientBuckets>(config_.per_client, config_.max_clients);
  if (!config_.client_key)
    config_.client_key = [](const http::Request& req) { return req.remote_ip; };
}

RateLimiter::~RateLimiter() = default;

Decision RateLimiter::check(std::string_view client, TimePoint now) {
  if (clients_ && !client.empty()) {
    Decision d = clients_->take(client, now);
    if (!d.allowed) {
      refused_client_.inc();
      return d;
    }
  }
  if (server_) {
    Decision d = server_->take(now);
    if (!d.allowed) {
      refused_server_.inc();
      return d;
    }
  }
  return {};
}

http::Middleware RateLimiter::middleware() {
  return [this](http::Handler next) -> http::Handler {
    return [this, next = std::move(next)](const http::Request& req, http::Response& res) {
      Decision d =
          check(clients_ ? config_.client_key(req) : std::string_view(), config_.time.now());
      if (!d.allowed) return refuse(res, 429, d.wait, "too many requests\n");
      next(req, res);
    };
  };
}

void RateLimiter::register_metrics(Registry& r, std::string_view prefix) const {
  std::string p(prefix);
  const char* help = "Requests refused with 429 by the rate limiter, by the bucket that refused.";
  r.counter_fn(p + "rate_limited_total", help, [this] { return double(refused_by_client()); },
               {{"scope", "client"}});
  r.counter_fn(p + "rate_limited_total", help, [this] { return double(refused_by_server()); },
               {{"scope", "server"}});
  r.counter_fn(p + "rate_limit_evictions_total",
               "Clients forgotten by the rate limiter before their bucket refilled (the table "
               "is too small).",
               [this] { return clients_ ? double(clients_->evictions()) : 0.0; });
}

}  // namespace mpg::kit
