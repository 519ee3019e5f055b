// config_internal.hpp: machine-dependent defaults (config.cpp).
#pragma once
#include <vector>

namespace mpg::detail {
std::vector<int> allowed_cpus();
int default_procs();
int debug_option(const char* key);
}  // namespace mpg::detail
