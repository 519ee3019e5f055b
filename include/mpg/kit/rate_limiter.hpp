// rate_limiter.hpp: token-bucket rate limits for the whole server and per client, as middleware
// answering 429 with Retry-After.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "mpg/http/handler.hpp"
#include "mpg/kit/metrics.hpp"
#include "mpg/kit/time.hpp"
#include "mpg/kit/token_bucket.hpp"

namespace mpg::kit {

class Registry;

// ClientBuckets: a token bucket per client key (an IP address), in a table of fixed size that
// never allocates after construction. Thread-safe; callable from goroutines and loop threads.
//
// The table is set-associative, like a CPU cache: a key hashes to one set of kWays entries,
// each {64-bit key hash, full_at}, under the set's own short lock (mpg::detail::Lock: it spins,
// and only sleeps if the holder is descheduled; a take holds it for a dozen ns). A key not in
// its set takes an empty way, else one whose bucket has refilled (a full bucket is no state, so
// forgetting it changes nothing), else the way closest to full (that client gets a fresh bucket
// early: counted in evictions()). So memory is bounded and the common case touches one set.
// Keys are compared by a 64-bit hash: two clients share a bucket only if their hashes collide
// (about n^2 / 2^65 for n clients).
class ClientBuckets {
 public:
  static constexpr std::size_t kWays = 7;  // 7 entries + the lock fill two 64-byte lines

  // max_clients: at least this many clients are tracked at once (rounded up to a power-of-two
  // number of sets; capacity() says how many).
  ClientBuckets(Rate r, std::size_t max_clients);
  ~ClientBuckets();
  ClientBuckets(const ClientBuckets&) = delete;
  ClientBuckets& operator=(const ClientBuckets&) = delete;

  // take: one token from `key`'s bucket at `now`.
  Decision take(std::string_view key, TimePoint now);
  // tokens: what `key`'s bucket holds at `now` (burst if the table does not know it).
  double tokens(std::string_view key, TimePoint now) const;
  std::size_t capacity() const;
  // size: keys the table holds now, full buckets included (a scan: for tests and debugging).
  std::size_t size() const;
  // evictions: keys forgotten while their bucket was not yet full (the table was too small).
  std::uint64_t evictions() const { return evictions_.value(); }

 private:
  struct Set;
  Set& set_for(std::uint64_t hash) const;

  BucketMath math_;
  std::size_t mask_;  // sets - 1
  std::unique_ptr<Set[]> sets_;
  Counter evictions_;
};

// RateLimitConfig: both limits are off until given a rate.
struct RateLimitConfig {
  Rate server;      // every request shares this bucket
  Rate per_client;  // each client_key has its own bucket
  // max_clients: clients tracked at once (ClientBuckets); 64 Ki take 2 MiB (16 Ki sets of 7).
  std::size_t max_clients = 64 * 1024;
  // client_key: which client a request comes from. Default: Request::remote_ip, which the
  // transport fills. A request whose key is empty has no per-client limit (only the server's).
  std::function<std::string_view(const http::Request&)> client_key;
  TimeSource time;
};

// RateLimiter: the per-client bucket first (so an abusive client is refused by its own bucket
// without draining the server's), then the server bucket. A request the server bucket refuses
// has still spent its client's token: that only happens while the whole server is over its
// rate. Thread-safe; its middleware may run on any number of threads at once.
class RateLimiter {
 public:
  explicit RateLimiter(RateLimitConfig config);
  ~RateLimiter();

  // check: the verdict for one request from `client` ("" : no per-client limit) at `now`.
  Decision check(std::string_view client, TimePoint now);
  // middleware: refuses with 429, Retry-After (seconds, rounded up) and a text body; the
  // limiter must outlive every handler the middleware wraps.
  http::Middleware middleware();

  std::uint64_t refused_by_client() const { return refused_client_.value(); }
  std::uint64_t refused_by_server() const { return refused_server_.value(); }
  const ClientBuckets* clients() const { return clients_.get(); }
  // register_metrics: <prefix>rate_limited_total{scope="client"|"server"} and
  // <prefix>rate_limit_evictions_total, read at scrape time. The limiter must outlive `r`.
  void register_metrics(Registry& r, std::string_view prefix = "mpg_") const;

 private:
  RateLimitConfig config_;
  std::unique_ptr<TokenBucket> server_;     // null: no server limit
  std::unique_ptr<ClientBuckets> clients_;  // null: no per-client limit
  Counter refused_client_;
  Counter refused_server_;
};

}  // namespace mpg::kit
