// chan.hpp: mpg::Chan<T>, Go's chan T: a copyable handle; copies refer to one channel.
#pragma once
#include <concepts>
#include <cstddef>
#include <optional>
#include <utility>

#include "mpg/detail/chan_core.hpp"

namespace mpg {

template <class T>
class Chan {
 public:
  // Chan(): a new unbuffered channel (every send meets a receive).
  Chan() : c_(detail::chan_make(&detail::ElemOpsFor<T>::ops, 0)) {}
  // Chan(cap): a new channel with room for cap values (0: unbuffered). A template so that a
  // literal 0 picks this and not the nil constructor.
  template <std::integral I>
  explicit Chan(I cap) : c_(detail::chan_make(&detail::ElemOpsFor<T>::ops, std::size_t(cap))) {}
  // Chan(nullptr): the nil channel: sends and receives block forever, select never picks it.
  Chan(std::nullptr_t) noexcept : c_(nullptr) {}
  Chan(const Chan& o) noexcept : c_(o.c_) {
    if (c_) detail::chan_retain(c_);
  }
  Chan(Chan&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  Chan& operator=(Chan o) noexcept {
    std::swap(c_, o.c_);
    return *this;
  }
  ~Chan() {
    if (c_) detail::chan_release(c_);
  }

  // send: blocks until a receiver takes v or there is buffer room. Throws ClosedChannel.
  void send(T v) {
    if (!c_) detail::block_forever(0);
    detail::chan_send(c_, &v);
  }
  // try_send: sends only if it would not block; false otherwise. The rvalue form moves from v
  // only on success, so a move-only value survives a failed try.
  bool try_send(T&& v) {
    if (!c_) return false;
    return detail::chan_try_send(c_, &v);
  }
  bool try_send(const T& v)
    requires std::copy_constructible<T>
  {
    T copy(v);
    return try_send(std::move(copy));
  }
  // recv: blocks for a value; nullopt once the channel is closed and drained.
  std::optional<T> recv() {
    if (!c_) detail::block_forever(1);
    Slot s;
    if (!detail::chan_recv(c_, s.raw)) return std::nullopt;
    return s.take();
  }
  // try_recv: a value if one is ready now; nullopt if none (closed, when given, tells why).
  std::optional<T> try_recv(bool* closed = nullptr) {
    if (closed) *closed = false;
    if (!c_) return std::nullopt;
    Slot s;
    switch (detail::chan_try_recv(c_, s.raw)) {
      case detail::TryRecv::Value: return s.take();
      case detail::TryRecv::Closed:
        if (closed) *closed = true;
        return std::nullopt;
      case detail::TryRecv::Empty: break;
    }
    return std::nullopt;
  }
  // close: no more sends; receivers drain the buffer, then see nullopt. Throws ChannelMisuse
  // on a second close.
  void close() { detail::chan_close(c_); }
  std::size_t len() const { return c_ ? detail::chan_len(c_) : 0; }
  std::size_t cap() const { return c_ ? detail::chan_cap(c_) : 0; }
  bool nil() const { return c_ == nullptr; }
  detail::ChanCore* core() const { return c_; }
  friend bool operator==(const Chan& a, const Chan& b) { return a.c_ == b.c_; }

  // Range over a channel, as Go's `for v := range ch`: ends when closed and drained.
  class iterator {
   public:
    explicit iterator(Chan* c) : c_(c) { advance(); }
    iterator() = default;
    T& operator*() { return *v_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    bool operator==(const iterator& o) const { return c_ == o.c_; }

   private:
    void advance() {
      v_ = c_->recv();
      if (!v_) c_ = nullptr;
    }
    Chan* c_ = nullptr;
    std::optional<T> v_;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  // Slot: raw storage the channel constructs a received value in.
  struct Slot {
    alignas(T) unsigned char raw[sizeof(T)];
    std::optional<T> take() {
      T* p = std::launder(reinterpret_cast<T*>(raw));
      std::optional<T> r(std::move(*p));
      p->~T();
      return r;
    }
  };
  detail::ChanCore* c_;
};

}  // namespace mpg
