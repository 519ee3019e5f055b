// exposition.hpp: the pieces of Prometheus's text exposition format 0.0.4: names, escaping,
// numbers, series lines. https://prometheus.io/docs/instrumenting/exposition_formats/
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mpg::kit::expo {

// valid_metric_name: [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_metric_name(std::string_view s);
// valid_label_name: [a-zA-Z_][a-zA-Z0-9_]*, not starting "__" (reserved for Prometheus).
bool valid_label_name(std::string_view s);

// append_help_text: HELP text escapes backslash as \\ and line feed as \n.
void append_help_text(std::string& out, std::string_view s);
// append_label_value: label values also escape the double quote as \".
void append_label_value(std::string& out, std::string_view s);
// append_number: integers (and integral doubles below 2^53) in plain decimal, other doubles
// in the shortest form that reads back exactly, and +Inf, -Inf, NaN by their names.
void append_number(std::string& out, double v);
void append_number(std::string& out, std::uint64_t v);

// append_series: `name``suffix`{n1="v1",...,extra_name="extra_value"} and a space; the braces
// only when there is a label. The value and the line feed are the caller's.
void append_series(std::string& out, std::string_view name, std::string_view suffix,
                   const std::vector<std::string>& names, const std::vector<std::string>& values,
                   std::string_view extra_name = {}, std::string_view extra_value = {});

}  // namespace mpg::kit::expo
