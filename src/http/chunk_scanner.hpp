// chunk_scanner.hpp: a byte-level check of a chunked body's framing (RFC 9112 §7.1), run before
// libhttp-parser sees the bytes, where that parser is lenient.
//
// The problem: built with HTTP_PARSER_STRICT=0 (as Debian ships it), libhttp-parser takes any
// byte after a chunk-size line's CR as its LF, any two bytes after chunk data as its CRLF, and
// folded or LF-terminated trailer lines. "3\rXabcXY0\r\n\r\n" is one valid body to it; a proxy
// in front that frames strictly sees something else, which is how requests are smuggled.
//
// The approach: this scanner walks the chunked body in step with the parser: chunk-size
// (HEXDIG+), optional BWS ";" extensions of field-value characters, CRLF, exactly chunk-size
// bytes of data, CRLF, ..., the last chunk "0", then a trailer section checked by a HeadScanner.
// The session feeds the parser only bytes this scanner accepted, and stops both at the body's
// end. The parser still decodes; the scanner only refuses. It also sums the chunk sizes, so a
// body over Limits::max_body is refused (413) at the size line, before its data arrives.
#pragma once
#include <cstddef>
#include <cstdint>

#include "http/head_scanner.hpp"
#include "http/rules.hpp"
#include "mpg/http/limits.hpp"

namespace mpg::http::detail {

// ChunkScanner: validates one chunked body at a time; owned by a session, reset per body.
class ChunkScanner {
 public:
  explicit ChunkScanner(const Limits& limits) : limits_(limits), trailers_(limits) {}

  // start: expect the first chunk-size line of a new body.
  void start();
  // scan: consumes [p, end) until the body (with its trailer section) ends, a rule breaks, or
  // the input ends; as HeadScanner::scan.
  ScanResult scan(const char* p, const char* end, std::size_t& used);
  // error: the rule that broke, after scan returned kError.
  Reject error() const { return error_; }
  // open_line_bytes: the bytes at the end of what was scanned that belong to a framing line not
  // yet ended: a chunk-size line, or the trailer section (held whole). The session keeps them
  // from libhttp-parser until the line (or section) is accepted whole, so the parser never
  // refuses bytes the scanner would refuse differently once it sees the rest: which rule
  // refuses a request must not depend on where a read ended (fuzzing found two such cases).
  std::size_t open_line_bytes() const {
    switch (state_) {
      case State::kSize:
      case State::kSizeBWS:
      case State::kExtension:
      case State::kSizeLF:
        return line_bytes_;
      case State::kTrailers:
        return trailer_bytes_;
      default:
        return 0;
    }
  }

 private:
  enum class State : std::uint8_t {
    kSizeStart,  // at the first HEXDIG of a chunk-size
    kSize,       // in the chunk-size
    kSizeBWS,    // SP after the size: a ";" must follow (BWS, RFC 9112 §7.1.1; no HTAB, see .cpp)
    kExtension,  // in chunk extensions, up to the CR (ignored, RFC 9112 §7.1.1)
    kSizeLF,     // after the CR of the chunk-size line
    kData,       // inside chunk data
    kDataCR,     // after chunk data: its CR
    kDataLF,     // after chunk data: its LF
    kTrailers,   // after the last chunk: the trailer section, checked by trailers_
    kDone,       // the body ended
    kError,      // a rule broke
  };

  ScanResult fail(Reject r);
  Reject count_line(std::size_t n);

  const Limits& limits_;
  HeadScanner trailers_;
  State state_ = State::kSizeStart;
  std::uint64_t size_ = 0;       // the current chunk's size
  std::uint64_t remaining_ = 0;  // bytes of the current chunk's data still to come
  std::uint64_t total_ = 0;      // sizes of the chunks so far, against max_body
  std::size_t line_bytes_ = 0;   // the current chunk-size line, against max_chunk_line
  std::size_t trailer_bytes_ = 0;  // the trailer section scanned so far
  Reject error_;
};

}  // namespace mpg::http::detail
