// handler.hpp: the one handler type every server drives, and middleware around it.
#pragma once
#include <functional>

#include "mpg/http/request.hpp"
#include "mpg/http/response.hpp"

namespace mpg::http {

// Handler: fills `res` for `req`. Called on the thread driving the connection's session,
// possibly many threads at once for different connections: a shared handler must be
// thread-safe. A handler that throws gets a 500 for that request; the connection lives on.
using Handler = std::function<void(const Request& req, Response& res)>;

// Middleware: wraps a handler in another (logging, auth, limits). Router::use applies them in
// order: the first registered runs first, outermost.
using Middleware = std::function<Handler(Handler next)>;

}  // namespace mpg::http
