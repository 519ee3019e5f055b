// context.hpp: one stack switch, through Boost.Context's fcontext (jump_fcontext), told to the
// sanitizers. Every switch in mpg goes through switch_context so ASan and TSan see it.
#pragma once
#include <boost/context/detail/fcontext.hpp>
#include <cstddef>

#include "runtime/platform.hpp"

extern "C" {
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, std::size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old, std::size_t* size_old);
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
}

namespace mpg::detail {

namespace bctx = boost::context::detail;
using Ctx = bctx::fcontext_t;
using Transfer = bctx::transfer_t;

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
  Transfer t = bctx::jump_fcontext(to_ctx, data);
#if MPG_ASAN
  __sanitizer_finish_switch_fiber(from.asan_fake, nullptr, nullptr);
#endif
  return t;
}

// entered_context: the first thing a new context runs (the counterpart of the code after
// jump_fcontext in switch_context).
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
