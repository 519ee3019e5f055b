// input.hpp: Input, a cursor that reads a fuzz input's bytes as small integers, front to back.
// Reading past the end yields zeros, so every byte string is a valid program for the targets
// and a short input simply ends early (Input::done tells when).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace mpg::fuzz {

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}

  bool done() const { return p_ == end_; }
  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }
  std::uint8_t u8() { return p_ < end_ ? *p_++ : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  // pick: one of the first n values of a table, by the next byte.
  template <class T, std::size_t N>
  const T& pick(const T (&table)[N]) {
    return table[u8() % N];
  }
  // rest: every byte not read yet, as text.
  std::string_view rest() {
    std::string_view r(reinterpret_cast<const char*>(p_), left());
    p_ = end_;
    return r;
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

// check: the invariant `ok` must hold; otherwise print what broke and abort, which libFuzzer
// reports as a crash with the input that caused it.
#define FUZZ_CHECK(ok, ...)                                                             \
  do {                                                                                  \
    if (!(ok)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n  ", __FILE__, __LINE__, #ok); \
      std::fprintf(stderr, __VA_ARGS__);                                                \
      std::fputc('\n', stderr);                                                         \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

}  // namespace mpg::fuzz
