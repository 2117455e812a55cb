// The child half of the run's cgroups (cgroup.hpp): it runs in the jail's
// setup process between clone() and execve(), where it may not allocate or
// take locks (child.hpp). The child-no-alloc test checks this file's object.
#include <sched.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/cgroup.hpp"

namespace kiln::sandbox::cgroup {

bool join_self(const Group::Entry& entry) noexcept {
    for (int fd : entry.tasks_fds)
        if (fd >= 0 && ::write(fd, "0", 1) != 1) return false;
    return true;
}

bool enter_namespace(ChildError& e) noexcept {
    return ::unshare(CLONE_NEWCGROUP) == 0 || fail(e, KILN_HINT_NAMESPACE, "unshare", "CLONE_NEWCGROUP");
}

}  // namespace kiln::sandbox::cgroup
