// The jail's setup process: everything between clone() and execve().
//
// jail_main() runs in the cloned child (pid 1 of the new pid namespace). It
// reads only the JailPlan the parent prepared and makes raw system calls
// (see child.hpp for why). It becomes the jail's init: after setup it
// forks the program, reaps orphans, forwards termination signals and, when
// the program exits, reports its wait status and exits, which makes the
// kernel kill everything left in the pid namespace.
#pragma once

#include <string>
#include <vector>

#include "sandbox/caps.hpp"
#include "sandbox/landlock.hpp"
#include "sandbox/mount.hpp"
#include "sandbox/rlimits.hpp"
#include "sandbox/seccomp.hpp"
#include "sandbox/user.hpp"

namespace kiln::sandbox {

// The child's fixed descriptors, moved into place first thing.
enum ChildFd : int {
    kFdStdin = 0,
    kFdStdout = 1,
    kFdStderr = 2,
    kFdSync = 3,    // parent -> child: one byte once uid maps and cgroups are set
    kFdError = 4,   // child -> parent: a ChildError; EOF at execve means success
    kFdStatus = 5,  // init -> parent: the program's wait status
    kChildFdCount = 6,
};

struct JailPlan {
    user::Plan user;
    mount::Plan mounts;
    caps::Plan caps;
    rlimits::Plan rlimits;
    landlock::Plan landlock;
    const seccomp::Program* init_seccomp = nullptr;  // the init's own filter
    const seccomp::Program* seccomp = nullptr;       // the program's filter
    std::vector<std::string> argv_storage, env_storage, path_dirs;
    std::vector<char*> argv, envp;  // null-terminated views of the storage
    std::string cwd;
    // Parent-side descriptors that become kFdStdin..kFdStatus in the child.
    int fds[kChildFdCount] = {-1, -1, -1, -1, -1, -1};

    void seal();  // fills argv/envp from the storage
};

[[noreturn]] void jail_main(const JailPlan& plan) noexcept;

}  // namespace kiln::sandbox
