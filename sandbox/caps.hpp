// Capabilities (C001, C009, T004): the program starts with none, in any
// set, and cannot regain them.
#pragma once

#include "sandbox/child.hpp"

namespace kiln::sandbox::caps {

struct Plan {
    int last_cap = 40;  // /proc/sys/kernel/cap_last_cap, read once in the parent
};

Plan prepare();
// Drops the bounding and ambient sets, locks the securebits, clears the
// effective, permitted and inheritable sets and sets no_new_privs. Child only.
bool drop_all(const Plan& plan, ChildError& e) noexcept;

}  // namespace kiln::sandbox::caps
