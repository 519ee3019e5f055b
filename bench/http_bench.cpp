// mpg_http_bench: the HTTP/1.1 core's cost per request, without I/O (docs/http.md).
//
//   http/plaintext_1        one wrk plaintext request per on_data call: parse, route, handler,
//                           serialize; ns per request and heap allocations per request
//   http/plaintext_16       16 pipelined requests per call (wrk's -s pipeline.lua depth 16)
//   http/parser_only        libhttp-parser alone on the same request, callbacks that do nothing:
//                           the floor any session built on it pays
//   http/head_scanner_only  the strict HeadScanner alone on the same request: what strictness
//                           costs on top of the parser (it is hand-written, so it is measured)
//   http/write_response     the serializer alone: status line, Server, Date, fields, length
//
// Allocations are counted by replacing the global operator new (http/alloc_counter.hpp).
#include <benchmark/benchmark.h>
#include <http_parser.h>

#include <string>

#include "http/alloc_counter.hpp"
#include "http/head_scanner.hpp"
#include "http/writer.hpp"
#include "mpg/http/router.hpp"
#include "mpg/http/session.hpp"

namespace {

using namespace mpg::http;

// kWrkRequest: the request wrk sends in the TechEmpower plaintext test.
constexpr std::string_view kWrkRequest =
    "GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\nAccept: text/plain,text/html;q=0.9,"
    "application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\nConnection: keep-alive\r\n\r\n";

// PlaintextRouter: the demo service's /plaintext route.
struct PlaintextRouter : Router {
  PlaintextRouter() {
    get("/plaintext", [](const Request&, Response& res) { res.text("Hello, World!"); });
  }
};

// report_per_request: the "ns_per_req" counter (wall time per request) and items/s.
void report_per_request(benchmark::State& st, double requests) {
  st.SetItemsProcessed(static_cast<std::int64_t>(requests));
  st.counters["ns_per_req"] =
      benchmark::Counter(requests, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void run_session(benchmark::State& st, int pipelined) {
  std::string input;
  for (int i = 0; i < pipelined; ++i) input += kWrkRequest;
  static const PlaintextRouter router;
  ServerSession session(router);
  std::string out;
  session.on_data(input, out);  // warm-up: buffers reach their working size
  long allocations = 0;
  for (auto _ : st) {
    out.clear();
    long before = test::allocations.load(std::memory_order_relaxed);
    if (session.on_data(input, out) != SessionStatus::kKeepReading) st.SkipWithError("closed");
    allocations += test::allocations.load(std::memory_order_relaxed) - before;
    benchmark::DoNotOptimize(out.data());
  }
  const double requests = double(st.iterations()) * pipelined;
  report_per_request(st, requests);
  st.counters["allocs_per_req"] = benchmark::Counter(double(allocations) / requests);
  st.counters["out_bytes_per_req"] = benchmark::Counter(double(out.size()) / pipelined);
}

void BM_plaintext_1(benchmark::State& st) { run_session(st, 1); }
void BM_plaintext_16(benchmark::State& st) { run_session(st, 16); }

int noop_data(http_parser*, const char*, std::size_t) { return 0; }
int noop(http_parser*) { return 0; }

void BM_parser_only(benchmark::State& st) {
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_url = s.on_header_field = s.on_header_value = s.on_body = &noop_data;
  s.on_headers_complete = s.on_message_complete = &noop;
  http_parser p;
  for (auto _ : st) {
    http_parser_init(&p, HTTP_REQUEST);
    std::size_t n = http_parser_execute(&p, &s, kWrkRequest.data(), kWrkRequest.size());
    benchmark::DoNotOptimize(n);
  }
  report_per_request(st, double(st.iterations()));
}

void BM_head_scanner_only(benchmark::State& st) {
  Limits limits;
  detail::HeadScanner scanner(limits);
  for (auto _ : st) {
    scanner.start_request();
    std::size_t used = 0;
    auto r = scanner.scan(kWrkRequest.data(), kWrkRequest.data() + kWrkRequest.size(), used);
    benchmark::DoNotOptimize(r);
  }
  report_per_request(st, double(st.iterations()));
}

void BM_write_response(benchmark::State& st) {
  Response res;
  res.text("Hello, World!");
  std::string out;
  for (auto _ : st) {
    out.clear();
    detail::append_response(out, res, false, detail::ConnectionField::kNone);
    benchmark::DoNotOptimize(out.data());
  }
  report_per_request(st, double(st.iterations()));
}

BENCHMARK(BM_plaintext_1)->Name("http/plaintext_1");
BENCHMARK(BM_plaintext_16)->Name("http/plaintext_16");
BENCHMARK(BM_parser_only)->Name("http/parser_only");
BENCHMARK(BM_head_scanner_only)->Name("http/head_scanner_only");
BENCHMARK(BM_write_response)->Name("http/write_response");

}  // namespace

BENCHMARK_MAIN();
