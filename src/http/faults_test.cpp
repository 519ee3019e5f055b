// faults_test.cpp: the three servers under hostile or unlucky clients: resets in the middle of a
// request and of a response, thousands of idle connections beside live load, a flood of
// connections beyond the descriptor limit, and handlers that block.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>

#include "http/servers_test_util.hpp"
#include "runtime/test_util.hpp"

namespace mpg::http {
namespace {

using namespace testing;

class Faults : public ::testing::TestWithParam<Model> {};

// A client that resets half-way through sending a request, or before reading a 1 MiB response,
// costs the server nothing lasting: later clients are served and no connection is left open.
TEST_P(Faults, ResetsMidRequestAndMidResponse) {
  auto s = std::make_unique<Running>(GetParam());
  std::string big(1 << 20, 'b');
  for (int i = 0; i < 30; i++) {
    Client c(s->port());
    ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + big.substr(0, 1000)));
    c.reset();
  }
  for (int i = 0; i < 10; i++) {
    Client c(s->port());
    ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big));
    std::this_thread::sleep_for(5ms);  // the server is writing the 1 MiB echo now
    c.reset();
  }
  {
    Client ok(s->port());
    ASSERT_TRUE(ok.send(get("/plaintext")));
    auto r = ok.response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  auto took = s->stop(1000ms);
  EXPECT_LT(took, 900ms) << "a reset connection was still open at shutdown";
  EXPECT_EQ(s->stats().open, 0u);
}

// Thousands of idle keep-alive connections do not slow the live ones down.
TEST_P(Faults, IdleConnectionsBesideLoad) {
  const int idle = int(mpg::testing::max_live(4000));
  Running s(GetParam());
  std::vector<std::unique_ptr<Client>> held;
  for (int i = 0; i < idle; i++) {
    held.push_back(std::make_unique<Client>(s.port()));
    ASSERT_TRUE(held.back()->connected());
    if (i % 4 == 0) {  // a quarter of them were served once, then went idle
      ASSERT_TRUE(held.back()->send(get("/plaintext")));
      ASSERT_TRUE(held.back()->response());
    }
  }
  std::vector<std::chrono::nanoseconds> lat;
  std::mutex mu;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++)
    ts.emplace_back([&] {
      Client c(s.port());
      for (int k = 0; k < 200; k++) {
        auto t0 = Clock::now();
        if (!c.send(get("/plaintext")) || !c.response()) return;
        std::lock_guard<std::mutex> lk(mu);
        lat.push_back(Clock::now() - t0);
      }
    });
  for (auto& t : ts) t.join();
  ASSERT_EQ(lat.size(), 800u);
  std::sort(lat.begin(), lat.end());
  EXPECT_LT(lat[lat.size() * 99 / 100], mpg::testing::under_sanitizer() ? 500ms : 50ms);
  // The idle ones still work.
  for (int i = 0; i < idle; i += idle / 10) {
    ASSERT_TRUE(held[std::size_t(i)]->send(get("/n/" + std::to_string(i))));
    auto r = held[std::size_t(i)]->response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, std::to_string(i));
  }
}

// A handler stuck in a blocking call for a second holds its own request only: on the goroutine
// and hybrid servers everyone else is served meanwhile. (On the reactor a handler runs on its
// loop thread, so it stalls that loop; reactor handlers must not block: docs/http.md.)
TEST_P(Faults, BlockingHandlerDoesNotStallOthers) {
  if (GetParam() == Model::Reactor) GTEST_SKIP() << "reactor handlers run on the loop thread";
  Running s(GetParam());
  std::vector<std::thread> blockers;
  for (int i = 0; i < 3; i++)
    blockers.emplace_back([&] {
      Client c(s.port());
      c.send(get("/block"));
      auto r = c.response();
      EXPECT_TRUE(r && r->body == "blocked");
    });
  std::this_thread::sleep_for(100ms);  // the three are blocked now
  Client c(s.port());
  auto t0 = Clock::now();
  for (int k = 0; k < 100; k++) {
    ASSERT_TRUE(c.send(get("/plaintext")));
    ASSERT_TRUE(c.response());
  }
  EXPECT_LT(Clock::now() - t0, 500ms);  // well before the blocked ones return
  for (auto& t : blockers) t.join();
}

double cpu_seconds_of(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", int(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  char buf[1024];
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  const char* p = std::strrchr(buf, ')');
  unsigned long ut = 0, st = 0;
  if (p) std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
  return double(ut + st) / double(sysconf(_SC_CLK_TCK));
}

// A flood of connections beyond the descriptor limit: the server keeps serving the connection
// it has, does not spin, logs at most about once a second, and serves new connections once
// descriptors are free again. The server runs in a child with RLIMIT_NOFILE lowered.
TEST_P(Faults, FloodBeyondDescriptorLimit) {
  const char* scale = mpg::testing::test_scale();
  if (scale && std::string(scale) == "tsan") GTEST_SKIP() << "fork + threads under TSan";
  int port_pipe[2], err_pipe[2], go_pipe[2];
  ASSERT_EQ(::pipe(port_pipe), 0);
  ASSERT_EQ(::pipe(err_pipe), 0);
  ASSERT_EQ(::pipe(go_pipe), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::alarm(60);
    ::dup2(err_pipe[1], 2);
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 96;  // runtime, loops, pipes, listener and a few dozen connections
    setrlimit(RLIMIT_NOFILE, &rl);
    {
      Running s(GetParam());
      std::uint16_t port = s.port();
      if (::write(port_pipe[1], &port, sizeof port) != sizeof port) ::_exit(3);
      char c;
      if (::read(go_pipe[0], &c, 1) != 1) ::_exit(4);  // the parent is done
      s.stop(1000ms);
    }
    ::_exit(0);
  }
  ::close(port_pipe[1]);
  ::close(err_pipe[1]);
  ::close(go_pipe[0]);
  std::uint16_t port = 0;
  ASSERT_EQ(::read(port_pipe[0], &port, sizeof port), ssize_t(sizeof port));
  Client existing(port);
  ASSERT_TRUE(existing.send(get("/plaintext")));
  ASSERT_TRUE(existing.response());
  std::vector<std::unique_ptr<Client>> flood;
  for (int i = 0; i < 300; i++) flood.push_back(std::make_unique<Client>(port));  // the backlog takes them
  std::this_thread::sleep_for(300ms);  // the server runs out of descriptors
  double cpu0 = cpu_seconds_of(pid);
  auto t0 = Clock::now();
  for (int k = 0; k < 20; k++) {
    ASSERT_TRUE(existing.send(get("/n/" + std::to_string(k))));
    auto r = existing.response();
    ASSERT_TRUE(r) << k;
    EXPECT_EQ(r->body, std::to_string(k));
    std::this_thread::sleep_for(50ms);
  }
  double cpu = cpu_seconds_of(pid) - cpu0;
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_LT(cpu / wall, 0.3) << "the server spins while out of descriptors";
  flood.clear();  // descriptors come back as the server sees the resets and closes
  std::this_thread::sleep_for(500ms);
  bool served = false;
  for (int tries = 0; tries < 20 && !served; tries++) {
    Client late(port);
    if (late.connected() && late.send(get("/plaintext"))) served = late.response().has_value();
    if (!served) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(served) << "no recovery once descriptors were free";
  ::write(go_pipe[1], "x", 1);
  std::string log;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(err_pipe[0], buf, sizeof buf)) > 0) log.append(buf, std::size_t(n));
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(port_pipe[0]);
  ::close(err_pipe[0]);
  ::close(go_pipe[1]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << log;
  std::size_t lines = std::count(log.begin(), log.end(), '\n');
  EXPECT_LE(lines, 8u) << log;  // ~2 s out of descriptors: about a line a second at most
}

INSTANTIATE_TEST_SUITE_P(Models, Faults, ::testing::Values(Model::Goroutine, Model::Reactor, Model::Hybrid),
                         [](const ::testing::TestParamInfo<Model>& i) { return std::string(model_name(i.param)); });

}  // namespace
}  // namespace mpg::http
