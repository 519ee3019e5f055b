// socket.hpp: the few socket calls the server needs, each returning an owned descriptor.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "mpg/poll/unique_fd.hpp"

namespace mpg::reactor::detail {

// make_listener: a non-blocking listening TCP socket on host:port (numeric IPv4 or IPv6), with
// SO_REUSEADDR and, if asked, SO_REUSEPORT. Throws std::system_error.
poll::UniqueFd make_listener(const std::string& host, std::uint16_t port, bool reuse_port,
                             int backlog);
// local_port: the port a socket is bound to.
std::uint16_t local_port(int fd);

}  // namespace mpg::reactor::detail
