// kernel_phases: how the kernel's cost of one small socket round trip moves over time on this
// machine, with nothing else changing. One thread writes 64 bytes into a Unix socket pair and
// reads them back, in slices of `--slice-ms`; each slice prints its ns per round trip, and the
// end prints a strip ('S' for a slice above `--slow-ns`, '.' otherwise) and the slow count.
//
//   kernel_phases [--slices 80] [--slice-ms 100] [--slow-ns 1900]
//
// Why (docs/showdown-harness.md): the showdown's CPU per request moves between two levels ~20%
// apart. This tool shows the same two levels in a loop with no server, no client and no
// allocation in it, switching in phases of a tenth of a second to a second inside one process;
// so they belong to the machine, and a repetition's figure depends on how much of it fell in
// the slow phases.
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  int slices = 80, slice_ms = 100;
  double slow_ns = 1900;
  CLI::App app{"the kernel's cost of a small socket round trip, slice by slice"};
  app.add_option("--slices", slices, "how many slices")->check(CLI::PositiveNumber);
  app.add_option("--slice-ms", slice_ms, "each slice's length")->check(CLI::PositiveNumber);
  app.add_option("--slow-ns", slow_ns, "a slice above this many ns per round trip counts as slow");
  CLI11_PARSE(app, argc, argv);

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    std::perror("socketpair");
    return 1;
  }
  using Clock = std::chrono::steady_clock;
  char buf[64] = {};
  std::string strip;
  int slow = 0;
  for (int s = 0; s < slices; s++) {
    auto t0 = Clock::now(), end = t0 + std::chrono::milliseconds(slice_ms);
    long trips = 0;
    Clock::time_point t;
    do {
      for (int i = 0; i < 256; i++) {  // the clock is read every 256 round trips
        if (::write(sv[0], buf, sizeof buf) != sizeof buf || ::read(sv[1], buf, sizeof buf) != sizeof buf) {
          std::perror("write/read");
          return 1;
        }
      }
      trips += 256;
      t = Clock::now();
    } while (t < end);
    double ns = std::chrono::duration<double, std::nano>(t - t0).count() / double(trips);
    std::printf("%.0f ", ns);
    bool is_slow = ns > slow_ns;
    slow += is_slow;
    strip += is_slow ? 'S' : '.';
  }
  std::printf("\n%s\n%d/%d slices slow (> %.0f ns a round trip)\n", strip.c_str(), slow, slices, slow_ns);
  ::close(sv[0]);
  ::close(sv[1]);
  return 0;
}
