// head_scanner.cpp: the strict grammar of a request head (see head_scanner.hpp).
//
// Every consumed byte is counted against its limit before the next byte is looked at, so a
// refusal happens at one byte position whatever the reads were: 414/431 when the count passes
// the limit first, 400 when an invalid byte comes first.
#include "http/head_scanner.hpp"

#include <string_view>

#include "http/chars.hpp"

namespace mpg::http::detail {
namespace {

// kVersionPattern: HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3); '#' stands for a DIGIT.
constexpr std::string_view kVersionPattern = "HTTP/#.#";

}  // namespace

void HeadScanner::start_request() {
  state_ = State::kLineStart;
  trailers_ = false;
  version_pos_ = 0;
  line_bytes_ = section_bytes_ = fields_ = 0;
  error_ = {};
}

void HeadScanner::start_trailers() {
  start_request();
  state_ = State::kFieldStart;
  trailers_ = true;
}

ScanResult HeadScanner::fail(Reject r) {
  state_ = State::kError;
  error_ = r;
  return ScanResult::kError;
}

Reject HeadScanner::count_line(std::size_t n) {
  line_bytes_ += n;
  return line_bytes_ > limits_.max_request_line ? kRequestLineTooLong : Reject{};
}

Reject HeadScanner::count_section(std::size_t n) {
  section_bytes_ += n;
  return section_bytes_ > limits_.max_header_bytes ? kHeaderTooLarge : Reject{};
}

ScanResult HeadScanner::scan(const char* p, const char* const end, std::size_t& used) {
  const char* const begin = p;
  while (p < end) {
    const char c = *p;
    Reject over;  // a limit passed by the bytes just consumed
    switch (state_) {
      case State::kLineStart:
        if (c == '\r') {
          state_ = State::kLeadingLF;
        } else if (is(c, kTchar)) {
          state_ = State::kMethod;
        } else {
          return fail(c == '\n' ? kBareLF : kBadMethod);
        }
        over = count_line(1);
        ++p;
        break;
      case State::kLeadingLF:
        if (c != '\n') return fail(kBareCR);
        state_ = State::kLineStart;
        over = count_line(1);
        ++p;
        break;
      case State::kMethod: {
        const char* q = run_of(p, end, kTchar);
        over = count_line(q - p);
        p = q;
        if (over || p == end) break;
        // RFC 9112 §3: the method ends at exactly one SP; a line end here lacks target and version.
        if (*p != ' ') return fail(*p == '\r' || *p == '\n' ? kBadVersion : kBadMethod);
        state_ = State::kTargetStart;
        over = count_line(1);
        ++p;
        break;
      }
      case State::kTargetStart:
        if (!is(c, kTarget)) return fail(kBadTarget);  // also a second SP: an empty target
        state_ = State::kTarget;
        over = count_line(1);
        ++p;
        break;
      case State::kTarget: {
        const char* q = run_of(p, end, kTarget);
        over = count_line(q - p);
        p = q;
        if (over || p == end) break;
        if (*p == ' ') {
          state_ = State::kVersion;
          over = count_line(1);
          ++p;
          break;
        }
        // A line end right after the target is HTTP/0.9's request line: never answered as such.
        return fail(*p == '\r' || *p == '\n' ? kBadVersion : kBadTarget);
      }
      case State::kVersion:
        if (version_pos_ == kVersionPattern.size()) {
          if (c != '\r') return fail(c == '\n' ? kBareLF : kBadVersion);
          state_ = State::kRequestLineLF;
        } else {
          const char want = kVersionPattern[version_pos_];
          if (want == '#' ? !(c >= '0' && c <= '9') : c != want) return fail(kBadVersion);
          ++version_pos_;
        }
        over = count_line(1);
        ++p;
        break;
      case State::kRequestLineLF:
        if (c != '\n') return fail(kBareCR);
        state_ = State::kFieldStart;
        over = count_line(1);
        ++p;
        break;
      case State::kFieldStart:
        if (c == '\r') {
          state_ = State::kEndLF;
        } else if (is(c, kTchar)) {
          if (++fields_ > limits_.max_header_fields) return fail(kTooManyFields);
          state_ = State::kFieldName;
        } else if (c == ' ' || c == '\t') {
          // RFC 9112 §2.2 (after the start-line) and §5.2 (obs-fold): reject, never unfold.
          return fail(fields_ == 0 && !trailers_ ? kSpaceAfterStartLine : kObsFold);
        } else {
          return fail(c == '\n' ? kBareLF : kBadFieldName);
        }
        over = count_section(1);
        ++p;
        break;
      case State::kFieldName: {
        const char* q = run_of(p, end, kTchar);
        over = count_section(q - p);
        p = q;
        if (over || p == end) break;
        if (*p != ':') return fail(*p == ' ' || *p == '\t' ? kSpaceBeforeColon : kBadFieldName);
        state_ = State::kFieldValue;
        over = count_section(1);
        ++p;
        break;
      }
      case State::kFieldValue: {
        const char* q = run_of(p, end, kValue);
        over = count_section(q - p);
        p = q;
        if (over || p == end) break;
        if (*p != '\r') return fail(*p == '\n' ? kBareLF : kBadFieldValue);
        state_ = State::kFieldLF;
        over = count_section(1);
        ++p;
        break;
      }
      case State::kFieldLF:
        if (c != '\n') return fail(kBareCR);
        state_ = State::kFieldStart;
        over = count_section(1);
        ++p;
        break;
      case State::kEndLF:
        if (c != '\n') return fail(kBareCR);
        over = count_section(1);
        ++p;
        if (over) break;
        state_ = State::kDone;
        used = p - begin;
        return ScanResult::kDone;
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
