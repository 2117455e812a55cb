// Landlock (C010): an LSM ruleset the program cannot lift, on top of the
// read-only mounts: writes only under /tmp, /workspace and writable
// binds, reads and execution only of the jail's own tree.
//
// Rules name inodes, and the jail's /tmp exists only after the mounts are
// built, so the whole ruleset is made in the child, after pivot_root, from
// paths and access masks the parent computed; kiln-init, pid 1, calls
// landlock_restrict_self on it (kiln_init.c), and the program inherits it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sandbox/child.hpp"

namespace kiln::sandbox::landlock {

// The running kernel's Landlock ABI version, or 0 when unavailable.
int probe_abi();

struct Rule {
    std::string path;
    std::uint64_t access;
};

struct Plan {
    int abi = 0;  // 0: not applied
    std::uint64_t handled_fs = 0;
    std::uint64_t scoped = 0;
    std::vector<Rule> rules;
};

Plan prepare(int abi, const std::vector<std::string>& writable_dirs);
// Builds the ruleset (in the jail, after pivot_root); ruleset_fd stays -1
// when the kernel has no Landlock. kiln-init restricts itself to it.
bool build_ruleset(const Plan& plan, int& ruleset_fd, ChildError& e) noexcept;

}  // namespace kiln::sandbox::landlock
