// The child half of the jail's ids (user.hpp): it runs in the jail's setup process
// between clone() and execve(), where it may not allocate or take locks
// (child.hpp). The child-no-alloc test checks this file's object for it.
#include "sandbox/user.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace kiln::sandbox::user {

bool enter(const Plan& plan, ChildError& e) noexcept {
    // Supplementary groups inherited from a root server (gid 0 among them)
    // must go. A rootless server cannot drop them: the kernel forbids it so
    // that negative group ACLs keep working; they show as nogroup inside.
    if (!plan.deny_setgroups && ::syscall(SYS_setgroups, 0, nullptr) != 0) return fail(e, KILN_HINT_IDS, "setgroups", "[]");
    if (::syscall(SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0) return fail(e, KILN_HINT_IDS, "setresgid");
    if (::syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0) return fail(e, KILN_HINT_IDS, "setresuid");
    return true;
}

bool die_with_server(ChildError& e) noexcept {
    return ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == 0 ||
           fail(e, KILN_HINT_PROCESS, "prctl", "PR_SET_PDEATHSIG");
}

}  // namespace kiln::sandbox::user
