// select.hpp: mpg::select, Go's select statement: waits on several channel operations and a
// timeout, fires exactly one case (chosen at random among the ready ones) and returns its index.
//
//   mpg::select(mpg::on_recv(in, [](std::optional<int> v) { ... }),
//               mpg::on_send(out, 42, [] { ... }),
//               mpg::on_timeout(10ms, [] { ... }));
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "mpg/chan.hpp"

namespace mpg {

namespace detail {
enum class CaseKind : std::uint8_t { Recv, Send, Timeout, Default };
// SelectCase: one case, type-erased. elem: raw storage (Recv) or the value to move (Send).
struct SelectCase {
  ChanCore* c = nullptr;
  void* elem = nullptr;
  CaseKind kind = CaseKind::Default;
  std::int64_t timeout_ns = 0;
};
struct SelectResult {
  int index;
  bool recv_ok;  // Recv: a value was received (false: the channel is closed)
};
// select_impl: Go's selectgo. Blocks unless a Default case is given.
SelectResult select_impl(SelectCase* cases, int n);

template <class T, class F>
struct RecvCase {
  Chan<T> ch;
  F f;
  alignas(T) unsigned char raw[sizeof(T)];
  SelectCase erase() { return {ch.core(), raw, CaseKind::Recv, 0}; }
  void fire(bool ok) {
    if (!ok) {
      f(std::optional<T>());
      return;
    }
    T* p = std::launder(reinterpret_cast<T*>(raw));
    std::optional<T> v(std::move(*p));
    p->~T();
    f(std::move(v));
  }
};
template <class T, class F>
struct SendCase {
  Chan<T> ch;
  T v;
  F f;
  SelectCase erase() { return {ch.core(), &v, CaseKind::Send, 0}; }
  void fire(bool) { f(); }
};
template <class F>
struct TimeoutCase {
  std::chrono::nanoseconds d;
  F f;
  SelectCase erase() { return {nullptr, nullptr, CaseKind::Timeout, d.count()}; }
  void fire(bool) { f(); }
};
template <class F>
struct DefaultCase {
  F f;
  SelectCase erase() { return {nullptr, nullptr, CaseKind::Default, 0}; }
  void fire(bool) { f(); }
};
}  // namespace detail

// on_recv: fires with the received value, or nullopt if the channel is closed.
template <class T, class F>
detail::RecvCase<T, std::decay_t<F>> on_recv(const Chan<T>& ch, F&& f) {
  return {ch, std::forward<F>(f), {}};
}
// on_send: fires once v has been sent. Sending on a closed channel throws ClosedChannel.
template <class T, class V, class F>
detail::SendCase<T, std::decay_t<F>> on_send(const Chan<T>& ch, V&& v, F&& f) {
  return {ch, T(std::forward<V>(v)), std::forward<F>(f)};
}
// on_timeout: fires if no other case could proceed within d.
template <class Rep, class Period, class F>
detail::TimeoutCase<std::decay_t<F>> on_timeout(std::chrono::duration<Rep, Period> d, F&& f) {
  return {std::chrono::duration_cast<std::chrono::nanoseconds>(d), std::forward<F>(f)};
}
// on_default: fires at once if no other case is ready (makes the select non-blocking).
template <class F>
detail::DefaultCase<std::decay_t<F>> on_default(F&& f) {
  return {std::forward<F>(f)};
}

// select: runs exactly one case's callback and returns its index (0-based, in argument order).
template <class... Cases>
int select(Cases&&... cs) {
  constexpr int n = int(sizeof...(Cases));
  detail::SelectCase erased[n > 0 ? n : 1] = {cs.erase()...};
  detail::SelectResult r = detail::select_impl(erased, n);
  int i = 0;
  ((i++ == r.index ? (cs.fire(r.recv_ok), true) : false) || ...);
  return r.index;
}

}  // namespace mpg
