// config.cpp: the defaults of mpg::Config that depend on the machine: procs (Go 1.25's rule:
// CPUs in the affinity mask, capped by the cgroup v2 CPU quota, rounded up) and MPG_DEBUG.
#include <sched.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/config_internal.hpp"

namespace mpg::detail {

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; i++)
      if (CPU_ISSET(i, &set)) cpus.push_back(i);
  }
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

// cgroup_cpu_limit: ceil(quota/period) from cgroup v2's cpu.max, or 0 when unlimited/unknown.
static int cgroup_cpu_limit() {
  FILE* f = std::fopen("/proc/self/cgroup", "r");
  if (!f) return 0;
  char line[512];
  std::string path;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "0::", 3) == 0) {
      path = line + 3;
      while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) path.pop_back();
    }
  }
  std::fclose(f);
  // Walk from the process's cgroup up to the root; the tightest quota wins.
  int best = 0;
  for (;;) {
    std::string file = "/sys/fs/cgroup" + path + "/cpu.max";
    if (FILE* c = std::fopen(file.c_str(), "r")) {
      char quota[64] = {0};
      long period = 0;
      if (std::fscanf(c, "%63s %ld", quota, &period) == 2 && std::strcmp(quota, "max") != 0 && period > 0) {
        int n = int(std::ceil(double(std::atol(quota)) / double(period)));
        if (n < 1) n = 1;
        if (best == 0 || n < best) best = n;
      }
      std::fclose(c);
    }
    if (path.empty() || path == "/") break;
    std::size_t slash = path.rfind('/');
    path = slash == 0 || slash == std::string::npos ? "" : path.substr(0, slash);
  }
  return best;
}

int default_procs() {
  if (const char* e = std::getenv("MPG_PROCS")) {
    int n = std::atoi(e);
    if (n > 0) return n;
  }
  int n = int(allowed_cpus().size());
  int q = cgroup_cpu_limit();
  if (q > 0 && q < n) n = q;
  return n < 1 ? 1 : n;
}

// debug_option: the value of key in MPG_DEBUG ("schedtrace=1000,asyncpreemptoff=1"), or -1.
int debug_option(const char* key) {
  const char* e = std::getenv("MPG_DEBUG");
  if (!e) return -1;
  std::size_t klen = std::strlen(key);
  for (const char* s = e; *s;) {
    if (std::strncmp(s, key, klen) == 0 && s[klen] == '=') return std::atoi(s + klen + 1);
    const char* comma = std::strchr(s, ',');
    if (!comma) break;
    s = comma + 1;
  }
  return -1;
}

}  // namespace mpg::detail
