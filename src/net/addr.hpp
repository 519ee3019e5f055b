// addr.hpp: address parsing and resolution for mpg::net (internal; net.cpp is the user).
#pragma once

#include <string_view>
#include <vector>

#include "mpg/net.hpp"

namespace mpg::net::detail {

// Resolved: what an address names, in the order listen/dial should try.
struct Resolved {
  std::vector<Addr> addrs;
  bool dual_stack = false;  // listen on [::] accepting IPv4 too
  Error err;
};

// resolve: the addresses `address` ("host:port", "[v6]:port", a Unix path or "@abstract") names
// in `network` ("tcp", "tcp4", "tcp6", "unix"). passive: for listen (an empty host is any
// address; for dial it is the local system, as Go's). A host name goes through getaddrinfo as an
// mpg::blocking call, so a goroutine must call it.
Resolved resolve(std::string_view network, std::string_view address, bool passive);

}  // namespace mpg::net::detail
