// source_location.hpp: std::source_location for clang 14 on libstdc++ 12, force-included (-include)
// into every translation unit of the fuzz build only.
//
// libstdc++ 12 defines std::source_location only when the compiler has
// __builtin_source_location, which clang gained in version 15; Debian 12's clang is 14. mpg's
// runtime names the type in mpg::go's default argument and in every G (its creation site), so
// without it nothing of the runtime compiles. This stand-in has the same interface, built from
// the __builtin_FILE/FUNCTION/LINE/COLUMN builtins clang 14 has (constexpr, not consteval: clang 14
// refuses a consteval call in a function template's default argument). Every object of the fuzz
// build sees the same definition, so the layout is consistent; it never links against GCC-built
// code.
#pragma once
#include <source_location>

#if !defined(__cpp_lib_source_location)
#include <cstdint>

namespace std {

struct source_location {
  static constexpr source_location current(const char* file = __builtin_FILE(),
                                           const char* function = __builtin_FUNCTION(),
                                           uint_least32_t line = __builtin_LINE(),
                                           uint_least32_t column = __builtin_COLUMN()) noexcept {
    source_location l;
    l.file_ = file;
    l.function_ = function;
    l.line_ = line;
    l.column_ = column;
    return l;
  }
  constexpr source_location() noexcept = default;
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr const char* function_name() const noexcept { return function_; }
  constexpr uint_least32_t line() const noexcept { return line_; }
  constexpr uint_least32_t column() const noexcept { return column_; }

 private:
  const char* file_ = "";
  const char* function_ = "";
  uint_least32_t line_ = 0;
  uint_least32_t column_ = 0;
};

}  // namespace std
#endif
