// The jail's setup process: everything between clone() and kiln-init.
//
// jail_main() runs in the cloned child (pid 1 of the new pid namespace).
// It usually shares the server's memory (a CLONE_VM clone: no copy of the
// server's address space), so until it execs it reads only the JailPlan
// the parent prepared and makes raw system calls (see child.hpp), while the
// parent thread waits. Its last step execs kiln-init (kiln_init.c), which
// applies Landlock, starts the program under seccomp and stays as the
// namespace's init: from then on no process of the jail holds a copy of
// the server's memory.
#pragma once

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

#include "sandbox/caps.hpp"
#include "sandbox/cgroup.hpp"
#include "sandbox/init_protocol.h"
#include "sandbox/landlock.hpp"
#include "sandbox/mount.hpp"
#include "sandbox/rlimits.hpp"
#include "sandbox/runtime.hpp"
#include "sandbox/ucounts.hpp"
#include "sandbox/user.hpp"

namespace kiln::sandbox {

// The child's fixed descriptors (init_protocol.h): the parent supplies
// stdio, sync, the two error pipes, status, the seccomp filters' sealed
// memfds and kiln-init's executable; the setup creates the Landlock ruleset.
constexpr int kChildFdCount = KILN_FD_COUNT;

struct JailPlan {
    user::Plan user;
    mount::Plan mounts;
    caps::Plan caps;
    rlimits::Plan rlimits;
    const ucounts::Plan* budgets = nullptr;  // the runtime's, shared by every run; never null
    landlock::Plan landlock;
    SeccompProfile seccomp = SeccompProfile::Default;  // kiln-init stacks the filters for it
    bool fresh_network = true;  // false: the jail joined a shared namespace, whose loopback is up
    std::vector<std::string> argv_storage, env_storage, path_dirs;
    std::string cwd;
    // kiln-init's argv (CWD PATH_DIRS PROFILE -- PROGRAM ARGS..., null-terminated)
    // and the program's environment, views of init_argv_storage/env_storage.
    std::vector<std::string> init_argv_storage;
    std::vector<char*> init_argv, envp;
    // Parent-side descriptors that become the child's fixed ones; -1 for
    // those the child creates itself.
    int fds[kChildFdCount];
    // The run's cgroup v1 `tasks` files, which the child joins first of all.
    cgroup::Group::Entry cgroup_entry;

    JailPlan() { std::fill(std::begin(fds), std::end(fds), -1); }
    void seal();  // builds init_argv and envp from argv, cwd, path_dirs, env
};

[[noreturn]] void jail_main(const JailPlan& plan) noexcept;

}  // namespace kiln::sandbox
