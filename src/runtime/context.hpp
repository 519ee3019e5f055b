// context.hpp: one stack switch, told to the sanitizers. Every switch in mpg goes through
// switch_context so ASan and TSan see it.
//
// On x86-64 the switch is mpg's own (context.cpp: six callee-saved registers and the stack
// pointer); elsewhere, and with -DMPG_BOOST_CONTEXT=ON, Boost.Context's fcontext. Both have one
// contract: jump(to, data) saves the caller, resumes `to`, and the resumed side receives
// {the caller's context, data}; make(top, size, fn) builds a context whose first resumption
// calls fn with that pair. Why not Boost's on x86-64 (docs/runtime.md, "The context switch"):
// mpg's resumes with `ret`, where jump_fcontext pops the address and jumps through a register.
// An unbuffered ping-pong at procs=1 took 102 ns with Boost's, 101 with a pop-and-jump copy of
// mpg's and 83 with `ret` (same tree, one run). The likely reason: the runtime's switches happen
// at a few call sites that every G shares (switch_out, execute), so a `ret` lands where the
// return-stack predictor expects, while the indirect jump's target is left to the branch-target
// predictor, which the interleaving of many Gs defeats more often. (A
// loop that switches between two different call sites is the opposite case: `ret` then always
// mispredicts, 7.0-7.5 ns against fcontext's 5.6 in mpg_fiber_bench's raw cases.) mpg's switch also
// leaves the MXCSR and x87 control word to the thread, as Go's and marl's do (fcontext saves
// and restores both on every switch: yield ping-pong 23.0 vs 24.6 ns). A goroutine that changes
// the rounding mode or the FP exception mask must restore it before it next blocks or yields;
// one preempted by signal cannot, so the trampoline saves its FP state and resets the control
// words to the defaults until it resumes (preempt.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "runtime/platform.hpp"

// Not with CET shadow stacks (-fcf-protection=return or full): the switch `ret`s onto another
// stack, which a shadow stack rejects.
#if !defined(__x86_64__) || MPG_BOOST_CONTEXT || (defined(__CET__) && (__CET__ & 2))
#define MPG_OWN_SWITCH 0
#include <boost/context/detail/fcontext.hpp>
#else
#define MPG_OWN_SWITCH 1
#endif

extern "C" {
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, std::size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old, std::size_t* size_old);
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
}

namespace mpg::detail {

#if MPG_OWN_SWITCH
using Ctx = void*;
struct Transfer {
  Ctx fctx;    // the context that switched here (resume it to go back)
  void* data;  // what it passed
};
}  // namespace mpg::detail
extern "C" {
// context.cpp. size is not used: the context's frame goes just below top.
mpg::detail::Transfer mpg_jump_context(mpg::detail::Ctx to, void* data);
mpg::detail::Ctx mpg_make_context(void* top, std::size_t size, void (*fn)(mpg::detail::Transfer));
}
namespace mpg::detail {
#else
namespace bctx = boost::context::detail;
using Ctx = bctx::fcontext_t;
using Transfer = bctx::transfer_t;
#endif

// Fiber: what the sanitizers need to know of one execution context (a G's stack, or an M's own
// thread stack, "g0"). Owned by the G or M it describes.
struct Fiber {
  const void* stack_lo = nullptr;  // lowest usable address
  std::size_t stack_size = 0;
#if MPG_ASAN
  void* asan_fake = nullptr;  // ASan's fake stack of this context while it is switched out
#endif
#if MPG_TSAN
  void* tsan = nullptr;  // TSan's fiber for this context
#endif
};

}  // namespace mpg::detail
// mpg_fresh_entry: where every fresh_context starts: the goroutine entry (proc.cpp). fn's
// Transfer is {the context that switched in, its data}. Never returns.
extern "C" [[noreturn]] void mpg_fresh_entry(mpg::detail::Transfer t);
namespace mpg::detail {

// jump_context / make_context: the switch's two primitives (see the top of this file).
// make_context's context starts just below `top`, on the stack `f` describes (f is read only
// by Boost's make_fcontext; mpg's own needs no size).
// fresh_context: a context that, when first resumed, calls mpg_fresh_entry on a stack that ends
// at `top` (16-byte aligned). mpg's own switch writes nothing for it: the context is `top` with
// its low bit set, and the jump, seeing the bit, sets the stack pointer and calls the entry. A
// spawn then touches no stack line, only the G. With Boost's switch it is a make_context.
#if MPG_OWN_SWITCH
inline Transfer jump_context(Ctx to, void* data) { return mpg_jump_context(to, data); }
inline Ctx make_context(void* top, const Fiber&, void (*fn)(Transfer)) { return mpg_make_context(top, 0, fn); }
inline Ctx fresh_context(void* top, const Fiber&) { return static_cast<char*>(top) + 1; }
// context_sp: where resuming ctx first touches its stack (to warm it).
inline const void* context_sp(Ctx ctx) {
  auto a = reinterpret_cast<std::uintptr_t>(ctx);
  return reinterpret_cast<const void*>(a & 1 ? a - 1 - 64 : a);
}
#else
inline Transfer jump_context(Ctx to, void* data) { return bctx::jump_fcontext(to, data); }
inline Ctx make_context(void* top, const Fiber& f, void (*fn)(Transfer)) { return bctx::make_fcontext(top, f.stack_size, fn); }
inline Ctx fresh_context(void* top, const Fiber& f) { return make_context(top, f, &mpg_fresh_entry); }
inline const void* context_sp(Ctx ctx) { return ctx; }
#endif

// switch_context: leaves `from` (saved into the returned Transfer by the resumed side) and runs
// `to`. dying: `from` will never run again (ASan then frees its fake stack).
inline Transfer switch_context(Fiber& from, Ctx to_ctx, const Fiber& to, void* data, bool dying = false) {
#if MPG_ASAN
  __sanitizer_start_switch_fiber(dying ? nullptr : &from.asan_fake, to.stack_lo, to.stack_size);
#else
  (void)from;
  (void)dying;
#endif
#if MPG_TSAN
  __tsan_switch_to_fiber(to.tsan, 0);
#else
  (void)to;
#endif
  Transfer t = jump_context(to_ctx, data);
#if MPG_ASAN
  __sanitizer_finish_switch_fiber(from.asan_fake, nullptr, nullptr);
#endif
  return t;
}

// entered_context: the first thing a new context runs (the counterpart of the code after
// jump_context in switch_context).
inline void entered_context(Fiber& self) {
#if MPG_ASAN
  __sanitizer_finish_switch_fiber(self.asan_fake, nullptr, nullptr);
#else
  (void)self;
#endif
}

inline void fiber_create(Fiber& f) {
#if MPG_TSAN
  if (!f.tsan) f.tsan = __tsan_create_fiber(0);
#else
  (void)f;
#endif
}
inline void fiber_destroy(Fiber& f) {
#if MPG_TSAN
  if (f.tsan) __tsan_destroy_fiber(f.tsan);
  f.tsan = nullptr;
#else
  (void)f;
#endif
}
// fiber_of_thread: describes the calling thread's own stack (an M's g0).
void fiber_of_thread(Fiber& f);

}  // namespace mpg::detail
