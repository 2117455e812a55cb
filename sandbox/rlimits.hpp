// Resource limits: a backstop under the cgroup limits (C007, T003), and the
// only limits a rootless server without a delegated cgroup has.
#pragma once

#include <sys/resource.h>

#include <array>
#include <cstddef>

#include "sandbox/child.hpp"
#include "sandbox/runtime.hpp"
#include "sandbox/ucounts.hpp"

namespace kiln::sandbox::rlimits {

struct Entry {
    int resource;
    rlim_t value;  // soft = hard
    const char* name;
};

struct Plan {
    std::array<Entry, 12> entries{};
    std::size_t count = 0;
};

// memory_by_rlimit: no memory cgroup, so RLIMIT_AS stands in (coarse: it
// counts address space, not resident memory). `shares` bounds what the jail
// takes of the server user's ucount-backed budgets (ucounts.hpp).
Plan prepare(const Limits& limits, bool memory_by_rlimit, const ucounts::Plan& shares);
bool enter(const Plan& plan, ChildError& e) noexcept;

}  // namespace kiln::sandbox::rlimits
