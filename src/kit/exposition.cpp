// exposition.cpp: Prometheus text format 0.0.4 helpers.
#include "kit/exposition.hpp"

#include <charconv>
#include <cmath>

namespace mpg::kit::expo {

namespace {

bool name_char(char c, bool first, bool colon) {
  bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
  return alpha || (!first && c >= '0' && c <= '9');
}

bool valid_name(std::string_view s, bool colon) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); i++)
    if (!name_char(s[i], i == 0, colon)) return false;
  return true;
}

void append_escaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

}  // namespace

bool valid_metric_name(std::string_view s) { return valid_name(s, true); }

bool valid_label_name(std::string_view s) { return valid_name(s, false) && !s.starts_with("__"); }

void append_help_text(std::string& out, std::string_view s) { append_escaped(out, s, false); }
void append_label_value(std::string& out, std::string_view s) { append_escaped(out, s, true); }

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) {  // 2^53: exact
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(v));
    out.append(buf, end);
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest round trip
    out.append(buf, end);
  }
}

void append_series(std::string& out, std::string_view name, std::string_view suffix,
                   const std::vector<std::string>& names, const std::vector<std::string>& values,
                   std::string_view extra_name, std::string_view extra_value) {
  out.append(name).append(suffix);
  if (!names.empty() || !extra_name.empty()) {
    out += '{';
    for (std::size_t i = 0; i < names.size(); i++) {
      if (i) out += ',';
      out.append(names[i]).append("=\"");
      append_label_value(out, values[i]);
      out += '"';
    }
    if (!extra_name.empty()) {
      if (!names.empty()) out += ',';
      out.append(extra_name).append("=\"");
      append_label_value(out, extra_value);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
}

}  // namespace mpg::kit::expo
