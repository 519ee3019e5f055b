// chunk_scanner.cpp: the strict grammar of chunked framing (see chunk_scanner.hpp).
#include "http/chunk_scanner.hpp"

#include <algorithm>
#include <limits>

#include "http/chars.hpp"

namespace mpg::http::detail {

void ChunkScanner::start() {
  state_ = State::kSizeStart;
  size_ = remaining_ = total_ = 0;
  line_bytes_ = trailer_bytes_ = 0;
  error_ = {};
}

ScanResult ChunkScanner::fail(Reject r) {
  state_ = State::kError;
  error_ = r;
  return ScanResult::kError;
}

Reject ChunkScanner::count_line(std::size_t n) {
  line_bytes_ += n;
  return line_bytes_ > limits_.max_chunk_line ? kChunkLineTooLong : Reject{};
}

ScanResult ChunkScanner::scan(const char* p, const char* const end, std::size_t& used) {
  const char* const begin = p;
  while (p < end) {
    const char c = *p;
    Reject over;
    switch (state_) {
      case State::kSizeStart:
        if (!is(c, kHex)) return fail(kBadChunkSize);  // chunk-size = 1*HEXDIG
        size_ = 0;
        state_ = State::kSize;
        [[fallthrough]];
      case State::kSize:
        if (is(c, kHex)) {
          // One digit at a time, so the 413 and the line limit fall at the same byte however
          // the input is split; total_ never passes max_body, so the subtraction is safe.
          if (size_ > (std::numeric_limits<std::uint64_t>::max() >> 4)) return fail(kBodyTooLarge);
          size_ = size_ * 16 + hex_value(c);
          if (size_ > limits_.max_body - total_) return fail(kBodyTooLarge);
        } else if (c == ';') {
          state_ = State::kExtension;
        } else if (c == ' ') {
          // BWS before an extension: SP only. RFC 9112 §7.1.1 allows HTAB too, but
          // libhttp-parser refuses it, and the scanner must never accept what the parser then
          // refuses: the refusal would depend on where a read ended (found by fuzzing:
          // fuzz/regressions/fuzz_http_session/chunk_size_htab_split).
          state_ = State::kSizeBWS;
        } else if (c == '\r') {
          state_ = State::kSizeLF;
        } else {
          return fail(c == '\n' ? kBareLF : kBadChunkSize);
        }
        over = count_line(1);
        ++p;
        break;
      case State::kSizeBWS:
        if (c == ';') {
          state_ = State::kExtension;
        } else if (c != ' ') {
          return fail(kBadChunkSize);  // BWS (SP) is allowed only before an extension
        }
        over = count_line(1);
        ++p;
        break;
      case State::kExtension: {
        // Extensions are ignored; only what could move the line end (CR, LF, NUL, CTLs) is
        // refused, and the line is bounded.
        const char* q = value_run(p, end);
        over = count_line(q - p);
        p = q;
        if (over || p == end) break;
        if (*p != '\r') return fail(*p == '\n' ? kBareLF : kBadChunkSize);
        state_ = State::kSizeLF;
        over = count_line(1);
        ++p;
        break;
      }
      case State::kSizeLF:
        if (c != '\n') return fail(kBareCR);
        ++p;
        line_bytes_ = 0;
        if (size_ == 0) {
          trailers_.start_trailers();
          state_ = State::kTrailers;
        } else {
          total_ += size_;
          remaining_ = size_;
          state_ = State::kData;
        }
        break;
      case State::kData: {
        std::uint64_t n = std::min<std::uint64_t>(remaining_, end - p);
        p += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kDataCR;
        break;
      }
      case State::kDataCR:
        if (c != '\r') return fail(kBadChunkEnd);
        state_ = State::kDataLF;
        ++p;
        break;
      case State::kDataLF:
        if (c != '\n') return fail(kBadChunkEnd);
        state_ = State::kSizeStart;
        ++p;
        break;
      case State::kTrailers: {
        std::size_t n = 0;
        ScanResult r = trailers_.scan(p, end, n);
        p += n;
        trailer_bytes_ += n;
        if (r == ScanResult::kError) return fail(trailers_.error());
        if (r == ScanResult::kDone) {
          state_ = State::kDone;
          used = p - begin;
          return ScanResult::kDone;
        }
        break;
      }
      case State::kDone:
      case State::kError:
        return fail(kMalformed);  // the session never scans past an end or an error
    }
    if (over) return fail(over);
  }
  used = p - begin;
  return ScanResult::kMore;
}

}  // namespace mpg::http::detail
