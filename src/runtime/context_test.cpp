// context_test.cpp: the stack switch's contract, outside the scheduler (context.hpp): a fresh
// context starts in its entry with the switcher's context and data; data passes both ways on
// every switch; values the compiler keeps in callee-saved registers across a switch survive it;
// the entry runs on a stack aligned as the ABI requires. Holds for mpg's own switch and, built
// with MPG_BOOST_CONTEXT=ON, for Boost's.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdint>

#include "runtime/context.hpp"

using mpg::detail::Ctx;
using mpg::detail::Fiber;
using mpg::detail::Transfer;

namespace {

constexpr std::size_t kStack = 64 * 1024;

struct Coroutine {
  Fiber self{}, caller{};
  void* stack = nullptr;
  Ctx ctx = nullptr;
  explicit Coroutine(void (*entry)(Transfer)) {
    stack = mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(stack, MAP_FAILED);
    self.stack_lo = stack;
    self.stack_size = kStack;
    mpg::detail::fiber_create(self);
    mpg::detail::fiber_of_thread(caller);
    ctx = mpg::detail::make_context(static_cast<char*>(stack) + kStack, self, entry);
  }
  ~Coroutine() {
    mpg::detail::fiber_destroy(self);
    munmap(stack, kStack);
  }
  // resume: runs the coroutine until it switches back; returns what it passed.
  void* resume(void* data) {
    Transfer t = mpg::detail::switch_context(caller, ctx, self, data);
    ctx = t.fctx;
    return t.data;
  }
};

Coroutine* current = nullptr;

// back: from inside the coroutine to its caller, and what the caller passes next.
Transfer back(Transfer from, void* data) {
  Transfer t = mpg::detail::switch_context(current->self, from.fctx, current->caller, data);
  return t;
}

// The coroutine adds one to each number it is given and hands it back; on nullptr it stops.
[[noreturn]] void adder(Transfer t) {
  mpg::detail::entered_context(current->self);
  for (;;) {
    auto* v = static_cast<std::uint64_t*>(t.data);
    if (!v) {
      back(t, nullptr);
      std::abort();  // never resumed after it said it stopped
    }
    *v += 1;
    t = back(t, v);
  }
}

TEST(Context, DataPassesBothWaysOnEverySwitch) {
  Coroutine co(adder);
  current = &co;
  for (std::uint64_t i = 0; i < 1000; i++) {
    std::uint64_t v = i * 3;
    void* got = co.resume(&v);
    ASSERT_EQ(got, &v);
    ASSERT_EQ(v, i * 3 + 1);
  }
  EXPECT_EQ(co.resume(nullptr), nullptr);
  current = nullptr;
}

// Many values live across the switch: the compiler keeps them in callee-saved registers, which
// the switch must give back exactly, on both sides.
__attribute__((noinline)) std::uint64_t mix(std::uint64_t seed, Coroutine& co) {
  std::uint64_t a = seed * 0x9E3779B97F4A7C15ull, b = a ^ (a >> 29), c = b * 0xBF58476D1CE4E5B9ull;
  std::uint64_t d = c ^ (c >> 31), e = d + a, f = e * 7 + b;
  std::uint64_t x = seed;
  co.resume(&x);
  return a + 3 * b + 5 * c + 7 * d + 11 * e + 13 * f + x;
}
std::uint64_t mix_expected(std::uint64_t seed) {
  std::uint64_t a = seed * 0x9E3779B97F4A7C15ull, b = a ^ (a >> 29), c = b * 0xBF58476D1CE4E5B9ull;
  std::uint64_t d = c ^ (c >> 31), e = d + a, f = e * 7 + b;
  return a + 3 * b + 5 * c + 7 * d + 11 * e + 13 * f + seed + 1;
}

// The coroutine side clobbers every callee-saved register it can between switches.
[[noreturn]] void clobberer(Transfer t) {
  mpg::detail::entered_context(current->self);
  for (;;) {
    auto* v = static_cast<std::uint64_t*>(t.data);
    if (!v) {
      back(t, nullptr);
      std::abort();
    }
#if defined(__x86_64__)
    asm volatile("movq $-1, %%rbx\n\tmovq $-1, %%r12\n\tmovq $-1, %%r13\n\tmovq $-1, %%r14\n\tmovq $-1, %%r15"
                 ::: "rbx", "r12", "r13", "r14", "r15");
#endif
    *v += 1;
    t = back(t, v);
  }
}

TEST(Context, CalleeSavedRegistersSurviveASwitch) {
  Coroutine co(clobberer);
  current = &co;
  for (std::uint64_t seed = 1; seed < 2000; seed++) ASSERT_EQ(mix(seed, co), mix_expected(seed)) << seed;
  EXPECT_EQ(co.resume(nullptr), nullptr);
  current = nullptr;
}

#if defined(__x86_64__)
// entry_sp_mod16: where a callee finds its stack: rsp + 8 (above the return address) mod 16,
// which the ABI makes 0 at every call. Naked: no prologue may move rsp first.
extern "C" __attribute__((naked, noinline)) std::uintptr_t mpg_test_entry_sp_mod16() {
  asm("leaq 8(%rsp), %rax\n\tandq $15, %rax\n\tret");
}

// The entry runs on an ABI-aligned stack, so every call it makes does too (a misaligned one
// faults at the first aligned SSE store, in printf's variadic prologue among others).
[[noreturn]] void aligner(Transfer t) {
  mpg::detail::entered_context(current->self);
  auto* out = static_cast<std::uintptr_t*>(t.data);
  *out = mpg_test_entry_sp_mod16();
  back(t, out);
  std::abort();
}

TEST(Context, EntryStackIsAbiAligned) {
  Coroutine co(aligner);
  current = &co;
  std::uintptr_t mod = 99;
  EXPECT_EQ(co.resume(&mod), &mod);
  EXPECT_EQ(mod, 0u);
  current = nullptr;
}
#endif

}  // namespace
