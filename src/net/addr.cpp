// addr.cpp: mpg::net's addresses: Error and Addr, and parsing "host:port" (see addr.hpp).
#include "net/addr.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "mpg/runtime.hpp"

namespace mpg::net {

namespace detail {

namespace {

bool parse_port(std::string_view s, int* port) {
  if (s.empty() || s.size() > 5) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v > 65535) return false;
  *port = v;
  return true;
}

// make_inet: an IPv4 or IPv6 address with a port; ip points to an in_addr or in6_addr.
Addr make_inet(int family, const void* ip, int port) {
  Addr r;
  auto nport = htons(static_cast<std::uint16_t>(port));
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&r.ss);
    sin->sin_port = nport;
    std::memcpy(&sin->sin_addr, ip, sizeof sin->sin_addr);
    r.len = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&r.ss);
    sin6->sin6_port = nport;
    std::memcpy(&sin6->sin6_addr, ip, sizeof sin6->sin6_addr);
    r.len = sizeof(sockaddr_in6);
  }
  r.ss.ss_family = static_cast<sa_family_t>(family);
  return r;
}

Addr make_v4(const in_addr& a, int port) { return make_inet(AF_INET, &a, port); }
Addr make_v6(const in6_addr& a, int port) { return make_inet(AF_INET6, &a, port); }

}  // namespace

Resolved resolve(std::string_view network, std::string_view address, bool passive) {
  Resolved r;
  if (network == "unix") {
    Addr a;
    auto* sun = reinterpret_cast<sockaddr_un*>(&a.ss);
    sun->sun_family = AF_UNIX;
    if (address.empty() || address.size() >= sizeof sun->sun_path) {
      r.err = Error{Errc::BadAddress, EINVAL};
      return r;
    }
    std::memcpy(sun->sun_path, address.data(), address.size());
    if (address[0] == '@') sun->sun_path[0] = '\0';  // Linux abstract namespace
    a.len = socklen_t(offsetof(sockaddr_un, sun_path) + address.size() + (address[0] == '@' ? 0 : 1));
    r.addrs.push_back(a);
    return r;
  }
  bool want4 = network == "tcp" || network == "tcp4";
  bool want6 = network == "tcp" || network == "tcp6";
  if (!want4 && !want6) {
    r.err = Error{Errc::BadAddress, EAFNOSUPPORT};
    return r;
  }
  std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) {
    r.err = Error{Errc::BadAddress, EINVAL};
    return r;
  }
  std::string_view hv = address.substr(0, colon);
  int port = 0;
  if (!parse_port(address.substr(colon + 1), &port)) {
    r.err = Error{Errc::BadAddress, EINVAL};
    return r;
  }
  if (hv.size() >= 2 && hv.front() == '[' && hv.back() == ']') hv = hv.substr(1, hv.size() - 2);
  else if (hv.find(':') != std::string_view::npos) {
    r.err = Error{Errc::BadAddress, EINVAL};  // a bare IPv6 literal needs brackets
    return r;
  }
  std::string host(hv);
  in_addr a4;
  in6_addr a6;
  if (host.empty()) {
    if (!passive) host = want4 ? "127.0.0.1" : "::1";  // Go dials the local system
    else if (want6) {
      r.addrs.push_back(make_v6(in6addr_any, port));
      r.dual_stack = want4;
      if (want4) r.addrs.push_back(make_v4(in_addr{htonl(INADDR_ANY)}, port));  // no IPv6 here
      return r;
    } else {
      r.addrs.push_back(make_v4(in_addr{htonl(INADDR_ANY)}, port));
      return r;
    }
  }
  if (host == "localhost") host = want4 ? "127.0.0.1" : "::1";
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    if (!want4) r.err = Error{Errc::BadAddress, EAFNOSUPPORT};
    else r.addrs.push_back(make_v4(a4, port));
    return r;
  }
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    if (!want6) r.err = Error{Errc::BadAddress, EAFNOSUPPORT};
    else r.addrs.push_back(make_v6(a6, port));
    return r;
  }
  // A name: getaddrinfo may block on DNS, so it runs as a blocking call (the P is retaken).
  addrinfo hints{};
  hints.ai_family = want4 && want6 ? AF_UNSPEC : (want4 ? AF_INET : AF_INET6);
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = mpg::blocking([&] { return ::getaddrinfo(host.c_str(), nullptr, &hints, &res); });
  if (rc != 0) {
    r.err = Error{Errc::BadAddress, rc == EAI_SYSTEM ? errno : EHOSTUNREACH};
    return r;
  }
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) r.addrs.push_back(make_v4(reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, port));
    else if (ai->ai_family == AF_INET6) r.addrs.push_back(make_v6(reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, port));
  }
  freeaddrinfo(res);
  if (r.addrs.empty()) r.err = Error{Errc::BadAddress, EHOSTUNREACH};
  return r;
}

}  // namespace detail

// --- Error, Addr ---

Error Error::from_errno(int e) {
  switch (e) {
    case 0: return {};
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED: return {Errc::Reset, e};
    case ECONNREFUSED: return {Errc::Refused, e};
    case EADDRINUSE: return {Errc::AddrInUse, e};
    case ETIMEDOUT: return {Errc::Timeout, e};
    default: return {Errc::Other, e};
  }
}

std::string Error::message() const {
  const char* what = "";
  switch (code) {
    case Errc::None: return "ok";
    case Errc::Eof: return "EOF";
    case Errc::Timeout: what = "i/o timeout"; break;
    case Errc::Closed: return "use of closed network connection";
    case Errc::Reset: what = "connection reset"; break;
    case Errc::Refused: what = "connection refused"; break;
    case Errc::AddrInUse: what = "address already in use"; break;
    case Errc::BadAddress: what = "bad address"; break;
    case Errc::Other: what = "error"; break;
  }
  std::string s = what;
  if (sys) s += std::string(": ") + std::strerror(sys) + " (errno " + std::to_string(sys) + ")";
  return s;
}

int Addr::port() const {
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

std::string Addr::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port());
  }
  if (ss.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
    std::string s(1, '[');
    s.append(buf).append("]:").append(std::to_string(port()));
    return s;
  }
  if (ss.ss_family == AF_UNIX) {
    const auto* sun = reinterpret_cast<const sockaddr_un*>(&ss);
    std::size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    if (n == 0) return "";
    if (sun->sun_path[0] == '\0') {
      std::string s(1, '@');
      s.append(sun->sun_path + 1, n - 1);
      return s;
    }
    return std::string(sun->sun_path, strnlen(sun->sun_path, n));
  }
  return "";
}

}  // namespace mpg::net
