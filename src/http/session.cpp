// session.cpp: ServerSession, the sans-I/O HTTP/1.1 server side of one connection.
//
// The problem. Three transports (a goroutine per connection, a reactor, a hybrid) must produce
// byte-identical responses, so the protocol lives here, without I/O. Input arrives in arbitrary
// pieces: a request may span reads, one read may hold many pipelined requests. libhttp-parser
// frames messages well but, built non-strict as Debian ships it, accepts input RFC 9112 says to
// refuse (head_scanner.hpp and chunk_scanner.hpp list what), and it calls back with pointers
// into whatever buffer it was given.
//
// The approach, per request:
//   1. Head. The HeadScanner checks each byte and finds the head's end. While the head is
//      incomplete its bytes are appended to head_buf_ (the transport's buffer will be reused).
//      Once complete, the parser gets the whole head in one call: from the caller's input when
//      the head arrived in one read (no copy), else from head_buf_. So each field arrives in one
//      callback as one contiguous view, and the parser only ever sees a head the scanner
//      accepted: every refusal depends on the bytes, not on how they were split.
//   2. Semantics. At the head's end check_head (head_rules.cpp) checks Host, framing, limits
//      and expectations; the session may append "100 Continue".
//   3. Body. Content-Length bodies go straight to the parser; chunked bodies go first through
//      the ChunkScanner, and the parser gets only the bytes it accepted. The body is a view into
//      the input when it arrives in one piece, else it is copied into body_buf_.
//   4. Dispatch. The parser pauses at the message's end, so the handler runs outside the C
//      parser's frames (an exception must not unwind through C), and the rest of the input is
//      parsed as the next request: responses are appended to `out` in request order.
//   5. End of a call. If a request is mid-body, anything still pointing into the caller's input
//      (the head's views, a body view) is copied and re-pointed (keep_for_next_call). If a head
//      is mid-way, the clock is read once so the transport can enforce the header deadline.
// After any refusal the session appends one error response with Connection: close and takes no
// more input. Buffers keep their capacity across requests (Limits::retain_bytes bounds what is
// kept), so a steady stream of small requests allocates nothing.
#include "mpg/http/session.hpp"

#include <cxxabi.h>
#include <http_parser.h>

#include <memory>
#include <mutex>
#include <vector>

#include "http/chunk_scanner.hpp"
#include "http/head_rules.hpp"
#include "http/head_scanner.hpp"
#include "http/writer.hpp"
#include "mpg/http/router.hpp"

namespace mpg::http {

using namespace detail;

struct ServerSession::Impl {
  // Phase: which part of a request the next input byte belongs to.
  enum class Phase : std::uint8_t {
    kHead,    // the head (or, before any byte, the gap between requests)
    kBody,    // the body; the parser holds the framing state
    kClosed,  // refused, or the last response is written: input is ignored
  };

  Impl(const Handler* h, const Limits& l) : handler(h), limits(l) {
    head.start_request();
    request.headers.reserve(kInitialFields);
  }

  // The per-thread pool of idle Impls (see session.hpp). take() prefers one made for the same
  // handler and limits, compared by address: `l` is always the session's interned copy
  // (HeadScanner and ChunkScanner hold the limits by reference, so an Impl is never rebound);
  // give() resets it for the next connection. noinline: a goroutine may
  // resume on another thread between two calls, so the thread_local's address is never cached.
  static Impl* take(const Handler* h, const Limits& l);
  static void give(Impl* impl);
  static std::vector<Impl*>& pool();
  void reset_for_reuse();

  SessionStatus on_data(std::string_view in, std::string& out);
  const char* feed_head(const char* p, const char* end, std::string& out);
  const char* feed_body(const char* p, const char* end, std::string& out);
  void parse_head(const char* base, std::size_t len, std::string& out);
  void dispatch(std::string& out);
  void fail(Reject r, std::string& out);
  void next_request();
  void keep_for_next_call();
  void append_body(const char* at, std::size_t n);

  static int on_url(http_parser* p, const char* at, std::size_t n);
  static int on_header_field(http_parser* p, const char* at, std::size_t n);
  static int on_header_value(http_parser* p, const char* at, std::size_t n);
  static int on_headers_complete(http_parser* p);
  static int on_body(http_parser* p, const char* at, std::size_t n);
  static int on_message_complete(http_parser* p);
  static Impl& of(http_parser* p) { return *static_cast<Impl*>(p->data); }
  static const http_parser_settings& settings();

  // kInitialFields: header fields reserved up front; a browser sends 10-20.
  static constexpr std::size_t kInitialFields = 32;

  const Handler* handler;
  const Limits& limits;  // the session's interned copy (intern(): never freed)
  HeadScanner head{limits};
  ChunkScanner chunks{limits};
  http_parser parser{};
  Request request;
  Response response;
  Framing framing;
  Phase phase = Phase::kHead;

  std::string head_buf;             // the head, when it spans calls or its body does
  std::string carry;                // chunked framing bytes scanned, not yet given to the parser
  std::string joined;               // carry + the next input, as the parser reads it
  std::string body_buf;             // the body, when it arrives in pieces
  const char* head_base = nullptr;  // where the parser read the head from
  std::size_t head_len = 0;
  bool head_owned = false;  // head_base is head_buf (else the caller's input)
  bool body_owned = false;  // request.body is body_buf (else the caller's input)

  bool in_trailers = false;  // fields now are trailers: ignored (RFC 9110 §6.5.1)
  bool value_last = false;   // the last field callback was a value
  bool complete = false;     // on_message_complete ran
  Reject callback_reject;    // set by a callback that stopped the parser

  bool pending = false;    // a head has begun and not ended
  bool stamp_due = false;  // header_started is to be read at the end of this call
  Clock::time_point started{};
  std::uint64_t served = 0;
};

namespace {

// extend: grows view `v` by the adjacent bytes [at, at + n); false if they are not adjacent
// (they always are: the parser reads a head from one contiguous buffer in one call).
bool extend(std::string_view& v, const char* at, std::size_t n) {
  if (v.data() == nullptr) {
    v = {at, n};
    return true;
  }
  if (v.data() + v.size() != at) return false;
  v = {v.data(), v.size() + n};
  return true;
}

// rebase: re-points `v` from [from, from + len) to the same offset from `to`; other views
// (static strings such as the method) are left alone.
void rebase(std::string_view& v, const char* from, std::size_t len, const char* to) {
  if (v.data() >= from && v.data() < from + len) v = {to + (v.data() - from), v.size()};
}

// release_if_large: empties `s`, freeing its memory if it holds more than `keep` bytes.
void release_if_large(std::string& s, std::size_t keep) {
  if (s.capacity() > keep) {
    std::string().swap(s);
  } else {
    s.clear();
  }
}

}  // namespace

int ServerSession::Impl::on_url(http_parser* p, const char* at, std::size_t n) {
  Impl& s = of(p);
  if (extend(s.request.target, at, n)) return 0;
  s.callback_reject = kMalformed;
  return -1;
}

int ServerSession::Impl::on_header_field(http_parser* p, const char* at, std::size_t n) {
  Impl& s = of(p);
  if (s.in_trailers) return 0;
  std::vector<Field>& fields = s.request.headers;
  if (fields.empty() || s.value_last) {
    fields.push_back(Field{{at, n}, {}});
    s.value_last = false;
    return 0;
  }
  if (extend(fields.back().name, at, n)) return 0;
  s.callback_reject = kMalformed;
  return -1;
}

int ServerSession::Impl::on_header_value(http_parser* p, const char* at, std::size_t n) {
  Impl& s = of(p);
  if (s.in_trailers) return 0;
  s.value_last = true;
  if (!s.request.headers.empty() && extend(s.request.headers.back().value, at, n)) return 0;
  s.callback_reject = kMalformed;
  return -1;
}

int ServerSession::Impl::on_headers_complete(http_parser* p) {
  Impl& s = of(p);
  s.in_trailers = true;
  s.callback_reject = check_head(*p, s.limits, s.request, s.framing);
  return s.callback_reject ? -1 : 0;
}

int ServerSession::Impl::on_body(http_parser* p, const char* at, std::size_t n) {
  of(p).append_body(at, n);
  return 0;
}

int ServerSession::Impl::on_message_complete(http_parser* p) {
  of(p).complete = true;
  http_parser_pause(p, 1);  // execute returns right after this message's last byte
  return 0;
}

const http_parser_settings& ServerSession::Impl::settings() {
  static const http_parser_settings s = [] {
    http_parser_settings v;
    http_parser_settings_init(&v);
    v.on_url = &on_url;
    v.on_header_field = &on_header_field;
    v.on_header_value = &on_header_value;
    v.on_headers_complete = &on_headers_complete;
    v.on_body = &on_body;
    v.on_message_complete = &on_message_complete;
    return v;
  }();
  return s;
}

void ServerSession::Impl::append_body(const char* at, std::size_t n) {
  if (!body_owned && request.body.data() == nullptr) {
    request.body = {at, n};  // the common case: the whole body in one piece of input
    return;
  }
  if (!body_owned) {
    body_buf.assign(request.body);
    body_owned = true;
  }
  body_buf.append(at, n);
  request.body = body_buf;
}

SessionStatus ServerSession::Impl::on_data(std::string_view in, std::string& out) {
  const char* p = in.data();
  const char* const end = p + in.size();
  while (p < end && phase != Phase::kClosed)
    p = phase == Phase::kHead ? feed_head(p, end, out) : feed_body(p, end, out);
  if (phase == Phase::kBody) keep_for_next_call();
  if (pending && stamp_due) {
    started = Clock::now();
    stamp_due = false;
  }
  return phase == Phase::kClosed ? SessionStatus::kCloseAfterWrite : SessionStatus::kKeepReading;
}

const char* ServerSession::Impl::feed_head(const char* p, const char* end, std::string& out) {
  if (!pending) {  // this byte is the request's first: the header deadline starts now
    pending = true;
    stamp_due = true;
  }
  std::size_t used = 0;
  switch (head.scan(p, end, used)) {
    case ScanResult::kError:
      fail(head.error(), out);
      return end;
    case ScanResult::kMore:
      head_buf.append(p, used);
      return end;
    case ScanResult::kDone:
      break;
  }
  pending = stamp_due = false;
  if (head_buf.empty()) {
    parse_head(p, used, out);
  } else {
    head_buf.append(p, used);
    head_owned = true;
    parse_head(head_buf.data(), head_buf.size(), out);
  }
  return p + used;
}

void ServerSession::Impl::parse_head(const char* base, std::size_t len, std::string& out) {
  http_parser_init(&parser, HTTP_REQUEST);
  parser.data = this;
  head_base = base;
  head_len = len;
  std::size_t n = http_parser_execute(&parser, &settings(), base, len);
  if (callback_reject) return fail(callback_reject, out);
  http_errno e = HTTP_PARSER_ERRNO(&parser);
  if (e != HPE_OK && e != HPE_PAUSED) return fail(reject_parser_error(e, request), out);
  if (n != len) return fail(kMalformed, out);  // the parser must end the head where we did
  if (complete) return dispatch(out);
  if (framing.expect_continue) out.append(kContinue);
  if (framing.chunked) chunks.start();
  phase = Phase::kBody;
}

const char* ServerSession::Impl::feed_body(const char* p, const char* end, std::string& out) {
  if (!framing.chunked) {
    std::size_t n = http_parser_execute(&parser, &settings(), p, end - p);
    http_errno e = HTTP_PARSER_ERRNO(&parser);
    if (e != HPE_OK && e != HPE_PAUSED) {
      fail(reject_parser_error(e, request), out);
      return end;
    }
    if (complete) dispatch(out);
    return p + n;
  }
  std::size_t used = 0;
  ScanResult r = chunks.scan(p, end, used);
  if (r == ScanResult::kError) {
    fail(chunks.error(), out);
    return end;
  }
  bool scanned_end = r == ScanResult::kDone;
  // The parser gets what the scanner has accepted except a framing line not yet ended (see
  // ChunkScanner::open_line_bytes); those bytes wait in `carry` for the rest of their line.
  std::size_t open = chunks.open_line_bytes();
  const char* base = p;
  std::size_t avail = used;
  if (!carry.empty()) {
    joined.assign(carry);
    joined.append(p, used);
    base = joined.data();
    avail = joined.size();
  }
  std::size_t give = avail - open;
  std::size_t n = give ? http_parser_execute(&parser, &settings(), base, give) : 0;
  http_errno e = HTTP_PARSER_ERRNO(&parser);
  if (e != HPE_OK && e != HPE_PAUSED) {
    fail(reject_parser_error(e, request), out);
    return end;
  }
  // The parser and the ChunkScanner must agree on where a chunked body ends.
  if (complete != scanned_end || n != give) {
    fail(kMalformed, out);
    return end;
  }
  carry.assign(base + give, open);
  if (complete) dispatch(out);
  return p + used;
}

void ServerSession::Impl::dispatch(std::string& out) {
  ++served;
  bool close = !request.keep_alive || (limits.max_requests_per_connection != 0 &&
                                       served >= limits.max_requests_per_connection);
  response.clear();
  try {
    (*handler)(request, response);
    if (response.status < 200 || response.status > 599) {
      response.clear();
      response.text("handler set an invalid status\n", 500);
    }
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation must unwind through
  } catch (...) {
    response.clear();
    response.text("Internal Server Error\n", 500);
  }
  // A streamed body to an HTTP/1.0 client ends at the close (RFC 9112 §6.1, §6.3 item 8).
  const BodyFraming framing = body_framing(response, request.version_minor);
  close = close || response.closes_connection() || framing == BodyFraming::kClose;
  ConnectionField conn = close                        ? ConnectionField::kClose
                         : request.version_minor == 0 ? ConnectionField::kKeepAlive
                                                      : ConnectionField::kNone;
  append_response(out, response, request.is_head(), conn, framing);
  if (close) {
    phase = Phase::kClosed;
  } else {
    next_request();
  }
}

void ServerSession::Impl::fail(Reject r, std::string& out) {
  append_error(out, r, request.is_head());
  phase = Phase::kClosed;
  pending = stamp_due = false;
}

void ServerSession::Impl::next_request() {
  request.clear();
  release_if_large(head_buf, limits.retain_bytes);
  release_if_large(body_buf, limits.retain_bytes);
  release_if_large(response.body, limits.retain_bytes);
  // A body streamed in many small pieces leaves a long list of their ends: let it go too.
  if (response.chunk_ends().capacity() * sizeof(std::size_t) > limits.retain_bytes)
    response = Response();
  carry.clear();
  release_if_large(joined, limits.retain_bytes);
  head.start_request();
  framing = {};
  head_base = nullptr;
  head_len = 0;
  head_owned = body_owned = false;
  in_trailers = value_last = complete = false;
  callback_reject = {};
  phase = Phase::kHead;
}

void ServerSession::Impl::keep_for_next_call() {
  if (!head_owned) {
    head_buf.assign(head_base, head_len);
    const char* to = head_buf.data();
    rebase(request.target, head_base, head_len, to);
    rebase(request.path, head_base, head_len, to);
    rebase(request.query, head_base, head_len, to);
    for (Field& f : request.headers) {
      rebase(f.name, head_base, head_len, to);
      rebase(f.value, head_base, head_len, to);
    }
    head_base = to;
    head_owned = true;
  }
  if (!body_owned && request.body.data() != nullptr) {
    body_buf.assign(request.body);
    request.body = body_buf;
    body_owned = true;
  }
}

namespace {
// kPoolMax: idle Impls kept per thread; beyond it they are freed (a burst of connections that
// all had a request in progress at once, now over).
constexpr std::size_t kPoolMax = 64;
}  // namespace

__attribute__((noinline)) std::vector<ServerSession::Impl*>& ServerSession::Impl::pool() {
  struct Pool {
    std::vector<Impl*> free;
    ~Pool() {
      for (Impl* i : free) delete i;
    }
  };
  thread_local Pool p;
  return p.free;
}

ServerSession::Impl* ServerSession::Impl::take(const Handler* h, const Limits& l) {
  std::vector<Impl*>& free = pool();
  for (std::size_t i = free.size(); i-- > 0;) {
    Impl* impl = free[i];
    if (impl->handler == h && &impl->limits == &l) {  // interned: one address per value
      free[i] = free.back();
      free.pop_back();
      return impl;
    }
  }
  return new Impl(h, l);
}

void ServerSession::Impl::give(Impl* impl) {
  impl->reset_for_reuse();
  std::vector<Impl*>& free = pool();
  if (free.size() >= kPoolMax) {
    delete impl;
    return;
  }
  free.push_back(impl);
}

void ServerSession::Impl::reset_for_reuse() {
  request.remote_ip = {};
  if (phase != Phase::kHead || pending) next_request();  // a closed or interrupted session
  pending = stamp_due = false;
  served = 0;
}

// intern: the process's one copy of this Limits value. A server has one Limits for all its
// connections, so each session keeps a pointer instead of ~90 bytes of copy; the copies are
// never freed (a process uses a handful of distinct values).
static const Limits* intern(const Limits& l) {
  // Neither is destroyed, not even at exit: a thread still serving then may intern one more
  // (a session made during shutdown), and a pooled Impl of another thread may hold one.
  static auto* mu = new std::mutex;
  static auto* all = new std::vector<std::unique_ptr<Limits>>();
  std::lock_guard<std::mutex> lk(*mu);
  for (auto& p : *all)
    if (*p == l) return p.get();
  all->push_back(std::make_unique<Limits>(l));
  return all->back().get();
}

ServerSession::ServerSession(const Handler& handler, const Limits& limits)
    : handler_(&handler), limits_(intern(limits)) {}

ServerSession::ServerSession(const Router& router, const Limits& limits)
    : ServerSession(router.handler(), limits) {}

ServerSession::~ServerSession() {
  if (impl_) Impl::give(impl_);
}

SessionStatus ServerSession::on_data(std::string_view input, std::string& out) {
  if (closed_) return SessionStatus::kCloseAfterWrite;
  if (!impl_) {
    impl_ = Impl::take(handler_, *limits_);
    impl_->served = served_;
    impl_->request.remote_ip = remote_ip_;
  }
  SessionStatus st = impl_->on_data(input, out);
  served_ = impl_->served;
  closed_ = st == SessionStatus::kCloseAfterWrite;
  if (closed_ || (impl_->phase == Impl::Phase::kHead && !impl_->pending)) {
    Impl::give(impl_);  // between requests: nothing of this connection is left in it
    impl_ = nullptr;
  }
  return st;
}

bool ServerSession::header_pending() const { return impl_ && impl_->pending; }

ServerSession::Clock::time_point ServerSession::header_started() const {
  return impl_ ? impl_->started : Clock::time_point{};
}

ServerSession::Clock::time_point ServerSession::header_deadline() const {
  return header_started() + limits_->header_timeout;
}

SessionStatus ServerSession::on_header_timeout(std::string& out) {
  if (closed_) return SessionStatus::kCloseAfterWrite;
  if (!impl_ || !impl_->pending) return SessionStatus::kKeepReading;
  impl_->fail(kHeaderTimeout, out);
  closed_ = true;
  Impl::give(impl_);
  impl_ = nullptr;
  return SessionStatus::kCloseAfterWrite;
}

bool ServerSession::idle() const { return !closed_ && (!impl_ || (impl_->phase == Impl::Phase::kHead && !impl_->pending)); }

bool ServerSession::closed() const { return closed_; }

std::uint64_t ServerSession::requests() const { return served_; }

const Limits& ServerSession::limits() const { return *limits_; }

}  // namespace mpg::http
