// buffer_test.cpp: Buffer::read_from keeps bytes in order on both of its paths (the free tail and
// the loop's scratch), honours the budget, and reports EOF and errors as read(2) does.
#include "mpg/reactor/buffer.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "mpg/poll/unique_fd.hpp"
#include "reactor/test_net.hpp"

namespace {

using mpg::reactor::Buffer;
using mpg::reactor::testnet::write_all;

// SocketPair: fd[0] reads (non-blocking, as a loop's sockets), put() writes to fd[1].
struct SocketPair {
  mpg::poll::UniqueFd fd[2];
  SocketPair() {
    int s[2] = {-1, -1};
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s), 0);
    fd[0] = mpg::poll::UniqueFd(s[0]);
    fd[1] = mpg::poll::UniqueFd(s[1]);
  }
  int rd() const { return fd[0].get(); }
  void put(const std::string& s) const { ASSERT_TRUE(write_all(fd[1].get(), s)); }
};

std::string pattern(std::size_t n, std::size_t seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  return s;
}

TEST(Buffer, SmallReadsLandBehindTheLiveBytes) {
  SocketPair sp;
  std::vector<char> scratch(64 * 1024);
  Buffer b;
  std::string want;
  for (std::size_t i = 0; i < 40; ++i) {  // 40 x 100 bytes: grows past kInitialBytes via the scratch
    std::string piece = pattern(100, i);
    sp.put(piece);
    want += piece;
    ASSERT_EQ(b.read_from(sp.rd(), scratch, 64 * 1024), 100);
    if (i % 3 == 0) {  // consume a prefix now and then: the live bytes move down, order kept
      b.retrieve(10);
      want.erase(0, 10);
    }
    ASSERT_EQ(b.view(), want);
  }
}

TEST(Buffer, ABurstIsOneReadAndTheBudgetHolds) {
  SocketPair sp;
  std::vector<char> scratch(64 * 1024);
  Buffer b;
  std::string burst = pattern(50 * 1024, 3);
  sp.put(burst);
  // The empty buffer's tail is small: the burst lands in the scratch, in one call, up to the budget.
  ASSERT_EQ(b.read_from(sp.rd(), scratch, 30 * 1024), 30 * 1024);
  EXPECT_EQ(b.view(), burst.substr(0, 30 * 1024));
  // The buffer is full now: the rest comes through the scratch again and is appended.
  ASSERT_EQ(b.read_from(sp.rd(), scratch, 64 * 1024), 20 * 1024);
  EXPECT_EQ(b.view(), burst);
  errno = 0;
  EXPECT_EQ(b.read_from(sp.rd(), scratch, 64 * 1024), -1);
  EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK);
  EXPECT_EQ(b.view(), burst);  // a failed read changes nothing
}

TEST(Buffer, DirectReadIntoARoomyTailAndEof) {
  SocketPair sp;
  std::vector<char> scratch(64 * 1024);
  Buffer b;
  b.append(pattern(Buffer::kDirectBytes * 2, 1));
  b.retrieve_all();  // capacity stays: the next read takes the direct path
  ASSERT_GE(b.capacity(), Buffer::kDirectBytes);
  std::string msg = pattern(5000, 9);
  sp.put(msg);
  ::shutdown(sp.fd[1].get(), SHUT_WR);
  ASSERT_EQ(b.read_from(sp.rd(), std::span<char>(), 64 * 1024), 5000);  // no scratch needed
  EXPECT_EQ(b.view(), msg);
  EXPECT_EQ(b.read_from(sp.rd(), scratch, 64 * 1024), 0);  // EOF
  EXPECT_EQ(b.view(), msg);
}

TEST(Buffer, AFullBufferWithoutScratchGrowsInsteadOfReportingEof) {
  SocketPair sp;
  Buffer b;
  std::string first = pattern(Buffer::kInitialBytes, 2);
  b.append(first);  // exactly full: no free tail
  ASSERT_EQ(b.capacity(), b.readable());
  sp.put("more");
  ASSERT_EQ(b.read_from(sp.rd(), std::span<char>(), 64 * 1024), 4);
  EXPECT_EQ(b.view(), first + "more");
}

}  // namespace
