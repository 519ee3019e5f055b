// detail/chan_core.hpp: the type-erased channel that mpg::Chan<T> is a typed handle on. All the
// logic (wait queues, direct hand-off, close) is in src/sync/chan.cpp, compiled once.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

namespace mpg::detail {

// ElemOps: how the channel moves and destroys elements it does not know the type of.
struct ElemOps {
  std::size_t size;
  std::size_t align;
  void (*move_construct)(void* dst, void* src);  // dst is raw storage; src stays owned by its owner
  void (*destroy)(void* p);
};

// The channel cannot undo a move half done (a buffered channel's slot is claimed before the
// value moves in), so an element whose move constructor or destructor throws terminates the
// program there, as a panic would, instead of leaving the channel wedged.
template <class T>
struct ElemOpsFor {
  static void move_construct(void* dst, void* src) noexcept { ::new (dst) T(std::move(*static_cast<T*>(src))); }
  static void destroy(void* p) noexcept { static_cast<T*>(p)->~T(); }
  static constexpr ElemOps ops{sizeof(T), alignof(T), &move_construct, &destroy};
};

class ChanCore;

ChanCore* chan_make(const ElemOps* ops, std::size_t cap);
void chan_retain(ChanCore* c);
void chan_release(ChanCore* c);
// chan_send: moves *src into the channel; blocks; throws ClosedChannel.
void chan_send(ChanCore* c, void* src);
// chan_try_send: false if it would block; throws ClosedChannel.
bool chan_try_send(ChanCore* c, void* src);
// chan_recv: constructs the value in raw storage dst; false when closed and drained.
bool chan_recv(ChanCore* c, void* dst);
enum class TryRecv { Value, Empty, Closed };
TryRecv chan_try_recv(ChanCore* c, void* dst);
void chan_close(ChanCore* c);
std::size_t chan_len(const ChanCore* c);
std::size_t chan_cap(const ChanCore* c);
// block_forever: an operation on a nil channel (Go blocks forever).
[[noreturn]] void block_forever(int reason);

}  // namespace mpg::detail
