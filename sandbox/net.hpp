// Network namespace (C003): the jail has its own network stack with only
// loopback, brought up here. No route leads out; the host's loopback and its
// abstract unix sockets live in another namespace and are unreachable.
#pragma once

#include "sandbox/child.hpp"

namespace kiln::sandbox::net {

bool enter(ChildError& e) noexcept;

}  // namespace kiln::sandbox::net
