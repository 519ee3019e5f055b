// test_support.hpp: helpers shared by the kit tests: a request through a real ServerSession
// (the bytes a client would see), and direct handler calls with a chosen remote address.
#pragma once
#include <string>
#include <string_view>

#include "http/test_support.hpp"
#include "mpg/http/handler.hpp"

namespace mpg::kit::test {

// serve_get: one "GET target" through a fresh ServerSession running `h`; the parsed response.
inline http::test::Parsed serve_get(const http::Handler& h, std::string_view target = "/",
                                    std::string_view extra_fields = "") {
  std::string in = "GET " + std::string(target) + " HTTP/1.1\r\nHost: a\r\n" +
                   std::string(extra_fields) + "\r\n";
  return http::test::only_response(http::test::serve(h, in).out);
}

// call: runs `h` directly on a GET request from `ip`, as a transport that filled
// Request::remote_ip would; the response.
inline http::Response call(const http::Handler& h, std::string_view ip = "192.0.2.1",
                           std::string_view method = "GET") {
  http::Request req;
  req.method = method;
  req.target = req.path = "/";
  req.remote_ip = ip;
  http::Response res;
  h(req, res);
  return res;
}

// ok: a handler that answers 200 "ok".
inline const http::Handler& ok() {
  static const http::Handler h = [](const http::Request&, http::Response& res) { res.text("ok"); };
  return h;
}

}  // namespace mpg::kit::test
