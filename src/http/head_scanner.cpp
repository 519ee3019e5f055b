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

ScanResult HeadScanner::scan(const char* p, const char* const end, std::size_t& used) {
  const char* const begin = p;
  Reject over;  // a limit passed by the bytes just consumed
  // Each case handles its state and, while bytes remain, falls through to the state that comes
  // next in a well-formed head, so a head costs one dispatch per line rather than per token.
  while (p < end && !over) {
    switch (state_) {
      case State::kLeadingLF:
        if (*p != '\n') return fail(kBareCR);
        state_ = State::kLineStart;
        over = count_line(1);
        ++p;
        continue;
      case State::kLineStart:
        if (*p == '\r') {
          state_ = State::kLeadingLF;
          over = count_line(1);
          ++p;
          continue;
        }
        if (!is(*p, kTchar)) return fail(*p == '\n' ? kBareLF : kBadMethod);
        state_ = State::kMethod;
        [[fallthrough]];
      case State::kMethod: {
        const char* q = run_of(p, end, kTchar);
        over = count_line(q - p);
        p = q;
        if (over || p == end) continue;
        // RFC 9112 §3: the method ends at one SP; a line end here lacks target and version.
        if (*p != ' ') return fail(*p == '\r' || *p == '\n' ? kBadVersion : kBadMethod);
        state_ = State::kTargetStart;
        over = count_line(1);
        ++p;
        if (over || p == end) continue;
        [[fallthrough]];
      }
      case State::kTargetStart:
        if (!is(*p, kTarget)) return fail(kBadTarget);  // also a second SP: an empty target
        state_ = State::kTarget;
        [[fallthrough]];
      case State::kTarget: {
        const char* q = run_of(p, end, kTarget);
        over = count_line(q - p);
        p = q;
        if (over || p == end) continue;
        // A line end right after the target is HTTP/0.9's request line: never answered as such.
        if (*p != ' ') return fail(*p == '\r' || *p == '\n' ? kBadVersion : kBadTarget);
        state_ = State::kVersion;
        over = count_line(1);
        ++p;
        if (over || p == end) continue;
        [[fallthrough]];
      }
      case State::kVersion:
        for (; p < end && !over && version_pos_ < kVersionPattern.size(); ++p, ++version_pos_) {
          const char want = kVersionPattern[version_pos_];
          if (want == '#' ? !(*p >= '0' && *p <= '9') : *p != want) return fail(kBadVersion);
          over = count_line(1);
        }
        if (over || p == end) continue;
        if (*p != '\r') return fail(*p == '\n' ? kBareLF : kBadVersion);
        state_ = State::kRequestLineLF;
        over = count_line(1);
        ++p;
        if (over || p == end) continue;
        [[fallthrough]];
      case State::kRequestLineLF:
        if (*p != '\n') return fail(kBareCR);
        state_ = State::kFieldStart;
        over = count_line(1);
        ++p;
        if (over || p == end) continue;
        [[fallthrough]];
      case State::kFieldStart:
        if (*p == '\r') {
          state_ = State::kEndLF;
          over = count_section(1);
          ++p;
          continue;
        }
        if (*p == ' ' || *p == '\t') {
          // RFC 9112 §2.2 (after the start-line) and §5.2 (obs-fold): reject, never unfold.
          return fail(fields_ == 0 && !trailers_ ? kSpaceAfterStartLine : kObsFold);
        }
        if (!is(*p, kTchar)) return fail(*p == '\n' ? kBareLF : kBadFieldName);
        if (++fields_ > limits_.max_header_fields) return fail(kTooManyFields);
        state_ = State::kFieldName;
        [[fallthrough]];
      case State::kFieldName: {
        const char* q = run_of(p, end, kTchar);
        over = count_section(q - p);
        p = q;
        if (over || p == end) continue;
        if (*p != ':') return fail(*p == ' ' || *p == '\t' ? kSpaceBeforeColon : kBadFieldName);
        state_ = State::kFieldValue;
        over = count_section(1);
        ++p;
        if (over || p == end) continue;
        [[fallthrough]];
      }
      case State::kFieldValue: {
        const char* q = value_run(p, end);
        over = count_section(q - p);
        p = q;
        if (over || p == end) continue;
        if (*p != '\r') return fail(*p == '\n' ? kBareLF : kBadFieldValue);
        state_ = State::kFieldLF;
        over = count_section(1);
        ++p;
        if (over || p == end) continue;
        [[fallthrough]];
      }
      case State::kFieldLF:
        if (*p != '\n') return fail(kBareCR);
        state_ = State::kFieldStart;
        over = count_section(1);
        ++p;
        continue;
      case State::kEndLF:
        if (*p != '\n') return fail(kBareCR);
        over = count_section(1);
        ++p;
        if (over) continue;
        state_ = State::kDone;
        used = p - begin;
        return ScanResult::kDone;
      case State::kDone:
      case State::kError:
        return fail(kMalformed);  // the session never scans past an end or an error
    }
  }
  if (over) return fail(over);
  used = p - begin;
  return ScanResult::kMore;
}

}  // namespace mpg::http::detail
