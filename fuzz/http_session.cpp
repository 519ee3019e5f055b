// http_session.cpp: fuzz_http_session: arbitrary bytes, in arbitrary pieces, into a
// ServerSession with a small Router; every output must be well-formed HTTP/1.1 and must not
// depend on how the input was split.
//
// Input layout (every byte string is valid; missing bytes read as 0, which picks the defaults):
//   byte 0..6  Limits: max_request_line, max_header_bytes, max_header_fields, max_body,
//              max_chunk_line, max_requests_per_connection, retain_bytes; each byte picks one
//              value of a small table whose first entry is the default (kLimitTables)
//   byte 7     flags: bit 0 call on_header_timeout after the last piece; bit 1 also feed the
//              stream a byte at a time; bits 4..7 the number n of piece lengths that follow
//   n bytes    piece lengths 0..255, used in a cycle to cut the stream (0: an empty on_data)
//   the rest   the byte stream a client sent
//
// The stream is fed to a fresh session once whole, once cut into the pieces (and once a byte
// at a time if asked). Each piece is copied into its own heap block that is freed as soon as
// on_data returns, so a view the session kept into its input is a use-after-free for ASan.
//
// Invariants (any violation aborts, which libFuzzer reports with the input):
//   1. on_data only appends to `out`; after it returned kCloseAfterWrite, every later call
//      returns kCloseAfterWrite and appends nothing; the status agrees with closed(); a session
//      is never both idle() and header_pending().
//   2. The output is a sequence of HTTP/1.1 responses: status line, "Server: mpg", a 29-byte
//      IMF-fixdate Date, header fields with token names and clean values, exactly one valid
//      Content-Length (none for 204/304), no Transfer-Encoding, a body of that length (none
//      for HEAD); "100 Continue" interim responses are exact; nothing follows a response with
//      Connection: close, and the session is closed exactly when one was written.
//   3. Response k answers the k-th request the handler saw, with the status and body the
//      handler set (500 if it threw or set a status outside 200..599); at most one response
//      more follows, a refusal (400, 408, 413, 414, 417, 431, 501 or 505) with Connection: close
//      whose body is its one-line reason (or absent, for a HEAD).
//   4. Whole, split and byte-at-a-time runs give the same output (Date values masked), the same
//      requests to the handler (method, target, path, query, version, keep-alive, fields, body)
//      and the same final state (closed, idle, header_pending, requests).
//   5. on_header_timeout appends a 408 and closes exactly when a header was pending.
// ASan and UBSan watch for memory errors and leaks throughout.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "input.hpp"
#include "mpg/http/router.hpp"
#include "mpg/http/session.hpp"

namespace {

using mpg::fuzz::Input;
using namespace mpg::http;

// kLimitTables: the values each limit byte picks from; index 0 is Limits' default, the others
// are small enough for short inputs to cross them.
constexpr std::size_t kRequestLine[] = {8 * 1024, 16, 24, 40, 64, 128, 1024};
constexpr std::size_t kHeaderBytes[] = {16 * 1024, 2, 16, 32, 64, 200, 1024};
constexpr std::size_t kHeaderFields[] = {100, 0, 1, 2, 3, 8};
constexpr std::size_t kBody[] = {1024 * 1024, 0, 1, 5, 16, 100, 4096};
constexpr std::size_t kChunkLine[] = {4 * 1024, 1, 2, 4, 8, 40};
constexpr std::size_t kRequestsPerConnection[] = {0, 1, 2, 3, 7};
constexpr std::size_t kRetain[] = {16 * 1024, 0, 8, 64};

constexpr std::size_t kMaxByteAtATime = 4096;  // bytes; longer streams skip that run
constexpr std::string_view kInternalError = "Internal Server Error\n";
constexpr std::string_view kInvalidStatus = "handler set an invalid status\n";
constexpr int kRefusals[] = {400, 408, 413, 414, 417, 431, 501, 505};

// make_router: the routes the fuzzer drives: fixed text, an echo, a parameter, a status chosen
// by the client, a throwing handler, a handler-set header (which may throw), Connection: close,
// and a dump of the parsed fields (so a field parsed differently shows in the output).
const Router& router() {
  static const Router* r = [] {
    auto* rt = new Router;
    rt->get("/plaintext", [](const Request&, Response& res) { res.text("Hello, World!"); });
    Handler echo = [](const Request& req, Response& res) {
      res.set_header("X-Body-Length", std::to_string(req.body.size()));
      res.text(req.body);
    };
    rt->post("/echo", echo);
    rt->put("/echo", echo);
    rt->get("/kv/{key}", [](const Request& req, Response& res) { res.text(req.param("key")); });
    rt->get("/status/{code}", [](const Request& req, Response& res) {
      std::string_view s = req.param("code");
      int code = 0;
      std::from_chars(s.data(), s.data() + s.size(), code);
      res.status = code;
      res.body = "s";
    });
    rt->get("/throw", [](const Request&, Response&) -> void { throw std::runtime_error("boom"); });
    rt->get("/header/{name}", [](const Request& req, Response& res) {
      res.add_header(req.param("name"), req.query);  // throws for a bad name or value: a 500
      res.text("ok");
    });
    rt->get("/close", [](const Request&, Response& res) {
      res.close_connection();
      res.text("bye");
    });
    rt->route("OPTIONS", "/fields", [](const Request& req, Response& res) {
      std::string dump;
      for (const Field& f : req.headers) dump.append(f.name).append("=").append(f.value) += '\n';
      res.text(dump);
    });
    return rt;
  }();
  return *r;
}

// Expected: what the handler set for one request, as the response must carry it.
struct Expected {
  bool head = false;
  int status = 200;
  std::string body;
  bool close = false;
};

// Run: everything one feeding of the stream produced.
struct Run {
  std::string out;                // the raw output of every call, in order
  std::vector<std::string> seen;  // each request as the handler saw it, flattened
  std::vector<Expected> expected;
  bool closed = false, idle = false, header_pending = false;
  std::uint64_t requests = 0;
};

std::string flatten(const Request& req) {
  std::string s;
  s.append(req.method).append("|").append(req.target).append("|").append(req.path);
  s.append("|").append(req.query).append("|").append(std::to_string(req.version_minor));
  s.append(req.keep_alive ? "|ka|" : "|close|");
  for (const Field& f : req.headers) s.append(f.name).append(":").append(f.value).append("\n");
  s.append("|").append(std::to_string(req.body.size())).append("|").append(req.body);
  return s;
}

// feed: runs a fresh session over `stream` cut into pieces of `lengths` (cyclic; empty: whole).
Run feed(const Limits& limits, std::string_view stream, const std::vector<std::size_t>& lengths,
         bool timeout_at_end) {
  Run run;
  Handler recorder = [&run](const Request& req, Response& res) {
    run.seen.push_back(flatten(req));
    Expected e;
    e.head = req.is_head();
    try {
      router().handler()(req, res);
    } catch (...) {
      e.status = 500;
      e.body = kInternalError;
      run.expected.push_back(e);
      throw;
    }
    if (res.status < 200 || res.status > 599) {
      e.status = 500;
      e.body = kInvalidStatus;
    } else {
      e.status = res.status;
      e.body = res.body;
      e.close = res.closes_connection();
    }
    run.expected.push_back(e);
  };
  ServerSession session(recorder, limits);
  bool closed = false;
  std::size_t pos = 0, next = 0, idle_calls = 0;
  while (pos < stream.size()) {
    std::size_t len = stream.size() - pos;
    if (!lengths.empty() && idle_calls < lengths.size()) len = std::min(len, lengths[next]);
    next = lengths.empty() ? 0 : (next + 1) % lengths.size();
    idle_calls = len == 0 ? idle_calls + 1 : 0;  // a cycle of zeros: the rest goes whole
    // The piece lives in its own heap block, freed right after the call.
    std::unique_ptr<char[]> piece(len ? new char[len] : nullptr);
    if (len) std::memcpy(piece.get(), stream.data() + pos, len);
    pos += len;
    std::string out = "prefix";
    SessionStatus st = session.on_data(std::string_view(piece.get(), len), out);
    piece.reset();
    FUZZ_CHECK(out.compare(0, 6, "prefix") == 0, "on_data changed what was in `out`");
    FUZZ_CHECK(!closed || (out.size() == 6 && st == SessionStatus::kCloseAfterWrite),
               "output or kKeepReading after kCloseAfterWrite (%zu bytes)", out.size() - 6);
    closed = st == SessionStatus::kCloseAfterWrite;
    FUZZ_CHECK(closed == session.closed(), "status and closed() disagree");
    FUZZ_CHECK(!(session.idle() && session.header_pending()), "idle and header_pending");
    run.out.append(out, 6);
  }
  if (timeout_at_end) {
    const bool pending = session.header_pending();
    std::string out;
    SessionStatus st = session.on_header_timeout(out);
    FUZZ_CHECK(pending == !out.empty(), "on_header_timeout: pending %d, %zu bytes", pending,
               out.size());
    FUZZ_CHECK((st == SessionStatus::kCloseAfterWrite) == (pending || closed),
               "on_header_timeout status");
    FUZZ_CHECK(!pending || out.compare(0, 13, "HTTP/1.1 408 ") == 0, "timeout is not a 408");
    run.out += out;
  }
  run.closed = session.closed();
  run.idle = session.idle();
  run.header_pending = session.header_pending();
  run.requests = session.requests();
  FUZZ_CHECK(run.requests == run.seen.size(), "requests() %llu, handler calls %zu",
             static_cast<unsigned long long>(run.requests), run.seen.size());
  return run;
}

bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

// check_date: "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7), shape only.
void check_date(std::string_view d) {
  FUZZ_CHECK(d.size() == 29, "Date value is %zu bytes", d.size());
  const char* shape = "aaa, 00 aaa 0000 00:00:00 GMT";
  for (std::size_t i = 0; i < 29; ++i) {
    const char c = d[i];
    bool ok = shape[i] == '0'   ? (c >= '0' && c <= '9')
              : shape[i] == 'a' ? ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
                                : c == shape[i];
    FUZZ_CHECK(ok, "Date value malformed at %zu: %.*s", i, 29, d.data());
  }
}

// validate: checks invariants 2 and 3 on `run`, and returns its output with each Date value
// masked, for comparing runs made at different seconds.
std::string validate(const Run& run) {
  const std::string_view out = run.out;
  std::string masked;
  std::size_t pos = 0, k = 0;
  bool saw_close = false;
  while (pos < out.size()) {
    FUZZ_CHECK(!saw_close, "bytes after a Connection: close response at %zu", pos);
    const std::size_t end = out.find("\r\n\r\n", pos);
    FUZZ_CHECK(end != std::string_view::npos, "response head without its empty line at %zu", pos);
    const std::string_view head = out.substr(pos, end + 4 - pos);
    pos = end + 4;
    FUZZ_CHECK(head.size() >= 15 && head.substr(0, 9) == "HTTP/1.1 " && head[12] == ' ',
               "bad status line: %.*s", int(std::min<std::size_t>(head.size(), 40)), head.data());
    int status = 0;
    auto [digits_end, ec] = std::from_chars(head.data() + 9, head.data() + 12, status);
    FUZZ_CHECK(ec == std::errc() && digits_end == head.data() + 12, "bad status code");
    if (status == 100) {
      FUZZ_CHECK(head == "HTTP/1.1 100 Continue\r\n\r\n", "malformed 100 Continue");
      masked.append(head);
      continue;
    }
    FUZZ_CHECK(status >= 200 && status <= 599, "final status %d", status);
    // The fields: one per line after the status line.
    std::size_t line = head.find("\r\n") + 2;
    for (std::size_t i = 13; i + 2 < line; ++i)
      FUZZ_CHECK(head[i] >= 0x20 && head[i] < 0x7f, "control byte in the reason phrase");
    std::string masked_head(head.substr(0, line));
    int field_no = 0, lengths = 0;
    long long length = -1;
    bool close = false;
    while (line < head.size() - 2) {
      const std::size_t eol = head.find("\r\n", line);
      const std::string_view f = head.substr(line, eol - line);
      line = eol + 2;
      const std::size_t colon = f.find(": ");
      FUZZ_CHECK(colon != std::string_view::npos && colon > 0, "field line without ': '");
      const std::string_view name = f.substr(0, colon), value = f.substr(colon + 2);
      for (char c : name) FUZZ_CHECK(is_tchar(c), "field name byte %02x", c & 0xff);
      for (char c : value)
        FUZZ_CHECK((c >= 0x20 && c != 0x7f) || c == '\t' || (c & 0x80), "field value byte %02x",
                   c & 0xff);
      ++field_no;
      if (field_no == 1) FUZZ_CHECK(f == "Server: mpg", "first field is not Server: mpg");
      if (field_no == 2) {
        FUZZ_CHECK(name == "Date", "second field is not Date");
        check_date(value);
        masked_head.append("Date: <date>\r\n");
        continue;
      }
      FUZZ_CHECK(field_no < 3 || (!iequals(name, "Date") && !iequals(name, "Server")),
                 "a second Date or Server");
      FUZZ_CHECK(!iequals(name, "Transfer-Encoding"), "Transfer-Encoding in a response");
      if (iequals(name, "Content-Length")) {
        ++lengths;
        auto r = std::from_chars(value.data(), value.data() + value.size(), length);
        FUZZ_CHECK(r.ec == std::errc() && r.ptr == value.data() + value.size() && length >= 0 &&
                       (value.size() == 1 || value[0] != '0'),
                   "bad Content-Length: %.*s", int(value.size()), value.data());
      }
      if (iequals(name, "Connection")) {
        FUZZ_CHECK(value == "close" || value == "keep-alive", "Connection: %.*s", int(value.size()),
                   value.data());
        close = close || value == "close";
      }
      masked_head.append(f).append("\r\n");
    }
    masked_head.append("\r\n");
    FUZZ_CHECK(field_no >= 2, "response without Server and Date");
    const std::size_t left = out.size() - pos;
    std::size_t body = 0;
    if (k < run.expected.size()) {  // the handler's response to request k
      const Expected& e = run.expected[k++];
      FUZZ_CHECK(status == e.status, "response %zu: status %d, handler set %d", k, status,
                 e.status);
      FUZZ_CHECK(!e.close || close, "response %zu: handler closed, no Connection: close", k);
      if (status == 204 || status == 304) {
        FUZZ_CHECK(lengths == 0, "Content-Length in a %d", status);
      } else {
        FUZZ_CHECK(lengths == 1, "response %zu has %d Content-Length fields", k, lengths);
        FUZZ_CHECK(std::size_t(length) == e.body.size(), "Content-Length %lld, body %zu", length,
                   e.body.size());
        body = e.head ? 0 : e.body.size();
        FUZZ_CHECK(body <= left, "response %zu: body cut short (%zu of %zu)", k, left, body);
        FUZZ_CHECK(e.head || out.substr(pos, body) == e.body, "response %zu: body differs", k);
      }
    } else {  // a refusal: the last response, its reason as the body (none for a HEAD)
      FUZZ_CHECK(
          std::find(std::begin(kRefusals), std::end(kRefusals), status) != std::end(kRefusals),
          "unexpected refusal status %d", status);
      FUZZ_CHECK(close, "refusal %d without Connection: close", status);
      FUZZ_CHECK(lengths == 1, "refusal with %d Content-Length fields", lengths);
      FUZZ_CHECK(left == 0 || left == std::size_t(length), "refusal: %zu bytes follow, CL %lld",
                 left, length);
      body = left;
      FUZZ_CHECK(body == 0 || out.back() == '\n', "refusal body is not one line");
    }
    masked.append(masked_head).append(out.substr(pos, body));
    pos += body;
    saw_close = saw_close || close;
  }
  FUZZ_CHECK(k == run.expected.size(), "%zu requests answered of %zu", k, run.expected.size());
  FUZZ_CHECK(saw_close == run.closed, "closed() %d but Connection: close written %d", run.closed,
             saw_close);
  return masked;
}

// print_escaped: `s` on stderr with CR, LF and other non-printable bytes escaped.
void print_escaped(const char* label, std::string_view s) {
  std::fprintf(stderr, "%s (%zu bytes): \"", label, s.size());
  for (char c : s) {
    if (c == '\r') {
      std::fputs("\\r", stderr);
    } else if (c == '\n') {
      std::fputs("\\n", stderr);
    } else if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      std::fputc(c, stderr);
    } else {
      std::fprintf(stderr, "\\x%02x", c & 0xff);
    }
  }
  std::fputs("\"\n", stderr);
}

void compare(const Run& a, const std::string& a_masked, const Run& b, const std::string& b_masked,
             const char* what) {
  if (a_masked != b_masked) {
    print_escaped("whole", a_masked);
    print_escaped(what, b_masked);
    std::size_t i = 0;
    while (i < a_masked.size() && i < b_masked.size() && a_masked[i] == b_masked[i]) ++i;
    FUZZ_CHECK(false, "whole and %s outputs differ at byte %zu (%zu vs %zu bytes)", what, i,
               a_masked.size(), b_masked.size());
  }
  FUZZ_CHECK(a.seen == b.seen, "whole and %s runs gave the handler different requests", what);
  FUZZ_CHECK(a.closed == b.closed && a.idle == b.idle && a.header_pending == b.header_pending &&
                 a.requests == b.requests,
             "whole and %s runs end in different states", what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  Limits limits;
  limits.max_request_line = in.pick(kRequestLine);
  limits.max_header_bytes = in.pick(kHeaderBytes);
  limits.max_header_fields = in.pick(kHeaderFields);
  limits.max_body = in.pick(kBody);
  limits.max_chunk_line = in.pick(kChunkLine);
  limits.max_requests_per_connection = in.pick(kRequestsPerConnection);
  limits.retain_bytes = in.pick(kRetain);
  const std::uint8_t flags = in.u8();
  std::vector<std::size_t> lengths(flags >> 4);
  for (std::size_t& n : lengths) n = in.u8();
  const std::string_view stream = in.rest();
  const bool timeout_at_end = flags & 1;

  const Run whole = feed(limits, stream, {}, timeout_at_end);
  const std::string whole_masked = validate(whole);
  const Run split = feed(limits, stream, lengths, timeout_at_end);
  compare(whole, whole_masked, split, validate(split), "split");
  if ((flags & 2) && stream.size() <= kMaxByteAtATime) {
    const Run bytes = feed(limits, stream, {1}, timeout_at_end);
    compare(whole, whole_masked, bytes, validate(bytes), "byte-at-a-time");
  }
  return 0;
}
