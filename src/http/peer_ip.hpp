// peer_ip.hpp: a socket peer's address without the port, as Request::remote_ip carries it.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

namespace mpg::http::detail {

// peer_ip: "192.0.2.1", "2001:db8::1" (an IPv4-mapped IPv6 peer as its IPv4 form), or "" for
// anything else (Unix sockets).
inline std::string peer_ip(const sockaddr& sa) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa.sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&sa)->sin_addr, buf, sizeof buf);
  } else if (sa.sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(&sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a)) inet_ntop(AF_INET, &a.s6_addr[12], buf, sizeof buf);
    else inet_ntop(AF_INET6, &a, buf, sizeof buf);
  }
  return buf;
}
inline std::string peer_ip(const sockaddr_storage& ss) { return peer_ip(reinterpret_cast<const sockaddr&>(ss)); }

}  // namespace mpg::http::detail
