// processor.hpp: mpg-httpd's Processor layer (seed §2.1): the logic behind each endpoint, in
// terms of HTTP requests and responses but independent of how the bytes arrived (the Gateway's
// model) and of how state is kept (the Model's design).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "model.hpp"
#include "mpg/http/request.hpp"
#include "mpg/http/response.hpp"
#include "mpg/http/router.hpp"
#include "mpg/mpg.hpp"

namespace httpd {

struct ProcessorOptions {
  bool debug_endpoints = true;  // /debug/*: the Gateway turns them off unless it is on loopback
};

inline void add_routes(mpg::http::Router& r, Kv& kv, ProcessorOptions opt) {
  using mpg::http::Request;
  using mpg::http::Response;
  r.get("/plaintext", [](const Request&, Response& res) { res.text("Hello, World!"); });
  r.get("/json", [](const Request&, Response& res) {
    nlohmann::json j = {{"message", "Hello, World!"}};
    res.json(j.dump());
  });
  r.post("/echo", [](const Request& req, Response& res) {
    res.set_content_type("application/octet-stream");
    res.body.assign(req.body);
  });
  r.get("/kv/{key}", [&kv](const Request& req, Response& res) {
    if (auto v = kv.get(std::string(req.param("key")))) {
      res.set_content_type("application/octet-stream");
      res.body = std::move(*v);
    } else {
      res.text("not found\n", 404);
    }
  });
  r.put("/kv/{key}", [&kv](const Request& req, Response& res) {
    kv.put(std::string(req.param("key")), std::string(req.body));
    res.status = 204;
  });
  r.del("/kv/{key}", [&kv](const Request& req, Response& res) {
    if (kv.del(std::string(req.param("key")))) res.status = 204;
    else res.text("not found\n", 404);
  });
  if (!opt.debug_endpoints) return;
  r.get("/debug/sched", [](const Request&, Response& res) {
    mpg::Stats s = mpg::stats();
    nlohmann::json j = {{"procs", s.procs},           {"idle_procs", s.idle_procs},
                        {"threads", s.threads},       {"idle_threads", s.idle_threads},
                        {"spinning", s.spinning},     {"goroutines", s.goroutines},
                        {"runnable", s.runnable},     {"waiting", s.waiting},
                        {"global_queue", s.global_queue}, {"spawned", s.spawned},
                        {"switches", s.switches},     {"steals", s.steals},
                        {"preempt_coop", s.preempt_coop}, {"preempt_async", s.preempt_async},
                        {"retakes", s.retakes},       {"blocking_calls", s.blocking_calls},
                        {"spread_cap", s.spread_cap}, {"contended_windows", s.contended_windows}};
    res.json(j.dump(1));
  });
  r.get("/debug/goroutines", [](const Request&, Response& res) { res.text(mpg::dump_goroutines()); });
}

}  // namespace httpd
