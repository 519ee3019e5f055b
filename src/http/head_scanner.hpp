// head_scanner.hpp: a byte-level check of a request head (or trailer section) against RFC 9112's
// grammar, run before libhttp-parser sees the bytes, where that parser is lenient.
//
// The problem: Debian builds libhttp-parser with HTTP_PARSER_STRICT=0, and in that mode it takes
// whitespace inside and after a field name as part of the name, joins obs-folded lines, accepts
// a bare LF as a line end, bytes >= 0x80 and "{|}" in the target, two spaces after the method,
// and a request line without a version (as HTTP/0.9). Each is a request-smuggling or cache-
// poisoning vector when a proxy in front reads the bytes differently (RFC 9112 §11.2).
//
// The approach: this scanner walks the head once with a state machine, enforcing the strict
// grammar and the size limits, and finds the end of the head (CRLF CRLF). The session hands the
// parser only a head this scanner accepted, in one piece, so the parser's leniencies never see
// input, and every verdict is a function of the bytes alone, not of how reads split them.
// Hot states (target, field name, field value) consume runs of bytes with one table load each.
#pragma once
#include <cstddef>
#include <cstdint>

#include "http/rules.hpp"
#include "mpg/http/limits.hpp"

namespace mpg::http::detail {

// ScanResult: what a scan of some input found.
enum class ScanResult : std::uint8_t {
  kMore,   // every byte was consumed and is valid so far; the section continues
  kDone,   // the section ended; `used` counts bytes up to and including its final LF
  kError,  // a byte broke a rule; error() names it; the input after it is meaningless
};

// HeadScanner: validates one request head or one trailer section at a time; owned by a
// session (or a ChunkScanner), reset per request, used by one thread at a time.
class HeadScanner {
 public:
  explicit HeadScanner(const Limits& limits) : limits_(limits) {}

  // start_request: expect a request line (after optional empty lines) and a header section.
  void start_request();
  // start_trailers: expect only field lines and the empty line (RFC 9112 §7.1.2).
  void start_trailers();
  // scan: consumes [p, end) until the section ends, a rule breaks, or the input ends.
  ScanResult scan(const char* p, const char* end, std::size_t& used);
  // error: the rule that broke, after scan returned kError.
  Reject error() const { return error_; }

 private:
  enum class State : std::uint8_t {
    kLineStart,      // before the method; an empty line (CRLF) may come first (§2.2)
    kLeadingLF,      // after the CR of such an empty line
    kMethod,         // in the method token
    kTargetStart,    // after the single SP that ends the method
    kTarget,         // in the request-target
    kVersion,        // after the single SP that ends the target: "HTTP/" DIGIT "." DIGIT
    kRequestLineLF,  // after the CR that ends the request line
    kFieldStart,     // at a field line or the empty line that ends the section
    kFieldName,      // in a field name
    kFieldValue,     // after the colon, up to the CR
    kFieldLF,        // after the CR that ends a field line
    kEndLF,          // after the CR of the empty line
    kDone,           // the section ended
    kError,          // a rule broke
  };

  ScanResult fail(Reject r);
  // count_line, count_section: add consumed bytes to a limit's count; the refusal if passed.
  Reject count_line(std::size_t n) {
    line_bytes_ += n;
    return line_bytes_ > limits_.max_request_line ? kRequestLineTooLong : Reject{};
  }
  Reject count_section(std::size_t n) {
    section_bytes_ += n;
    return section_bytes_ > limits_.max_header_bytes ? kHeaderTooLarge : Reject{};
  }

  const Limits& limits_;
  State state_ = State::kLineStart;
  bool trailers_ = false;
  std::uint8_t version_pos_ = 0;   // bytes of "HTTP/x.y" matched
  std::size_t line_bytes_ = 0;     // request line so far, against max_request_line
  std::size_t section_bytes_ = 0;  // field lines so far, against max_header_bytes
  std::size_t fields_ = 0;         // field lines started, against max_header_fields
  Reject error_;
};

}  // namespace mpg::http::detail
