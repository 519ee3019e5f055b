// refusal.hpp: how every kit middleware says "not now": a status, Retry-After, a one-line body.
#pragma once
#include <cstdint>
#include <string_view>

#include "mpg/http/response.hpp"
#include "mpg/kit/time.hpp"

namespace mpg::kit {

// retry_after_seconds: `wait` as Retry-After's delay-seconds (RFC 9110 §10.2.3), rounded up so
// a client that obeys it is not refused again for the same reason; at least 1, since 0 would
// invite an immediate retry of a request that was just refused.
std::int64_t retry_after_seconds(Nanos wait);

// refuse: fills `res` with `status` (429 or 503), Retry-After: retry_after_seconds(wait),
// Content-Type text/plain and `body`. Fields an outer middleware set earlier are kept.
void refuse(http::Response& res, int status, Nanos wait, std::string_view body);

}  // namespace mpg::kit
