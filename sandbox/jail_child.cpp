// The jail's setup process from clone() to the exec of kiln-init (jail.hpp).
// It shares the server's memory, so it may not allocate or take locks
// (child.hpp); the child-no-alloc test checks this file's object for it.
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/jail.hpp"
#include "sandbox/net.hpp"

namespace kiln::sandbox {
namespace {

[[noreturn]] void report_and_exit(const ChildError& e) noexcept {
    write_all(KILN_FD_SETUP_ERROR, &e, sizeof e);
    ::_exit(127);
}

// What survives the exec of kiln-init: stdio, its error and status pipes,
// the seccomp filters.
bool survives_exec(int fd) noexcept {
    return fd <= KILN_FD_STDERR || fd == KILN_FD_EXEC_ERROR || fd == KILN_FD_STATUS || fd == KILN_FD_BASE_BPF ||
           fd == KILN_FD_EXTRA_BPF;
}

// Moves the parent's descriptors to their fixed numbers and closes
// everything else the server had open (C012): other runs' pipes, the audit
// log, sockets.
bool arrange_fds(const JailPlan& plan) noexcept {
    int high[kChildFdCount];
    for (int i = 0; i < kChildFdCount; ++i) {
        high[i] = plan.fds[i] < 0 ? -1 : ::fcntl(plan.fds[i], F_DUPFD_CLOEXEC, 64);
        if (plan.fds[i] >= 0 && high[i] < 0) return false;
    }
    for (int i = 0; i < kChildFdCount; ++i) {
        if (high[i] < 0) continue;
        if (::dup3(high[i], i, survives_exec(i) ? 0 : O_CLOEXEC) < 0) return false;
    }
    return ::syscall(SYS_close_range, kChildFdCount, ~0U, 0) == 0;
}

// Puts a descriptor the setup created at its fixed number (kept over exec).
bool place_fd(int fd, int target, ChildError& e) noexcept {
    if (fd == target) return ::fcntl(fd, F_SETFD, 0) == 0 || fail(e, KILN_HINT_PROCESS, "fcntl", "F_SETFD");
    if (::dup3(fd, target, 0) < 0) return fail(e, KILN_HINT_PROCESS, "dup3");
    ::close(fd);
    return true;
}

bool wait_for_parent() noexcept {
    char go = 0;
    for (;;) {
        ssize_t n = ::read(KILN_FD_SYNC, &go, 1);
        if (n < 0 && errno == EINTR) continue;
        return n == 1;
    }
}

// The setup sequence, in order: one module verb a line, each naming the
// control it serves.
bool setup(const JailPlan& plan, ChildError& e) noexcept {
    int bind_fds[mount::kMaxBinds];
    ucounts::Files budget_fds;
    int ruleset = -1;
    return cgroup::enter_namespace(e)                              // its own group is "/" (C012)
           && mount::open_sources(plan.mounts, bind_fds, e)        // with the server's host ids (C002)
           && user::enter(plan.user, e)                            // the jail's ids; caps until drop_all (C001)
           && ucounts::open_files(*plan.budgets, budget_fds, e)    // while the host's /proc is there (C007)
           && user::die_with_server(e)                             // after the id change, which clears it
           && mount::enter(plan.mounts, bind_fds, e)               // tmpfs root, binds, pivot_root (C002, C012)
           && ucounts::enter(*plan.budgets, budget_fds, e)         // after the mounts, which need their own (C007)
           && net::name_host(e)                                    // "kiln", in its own uts namespace
           && (!plan.fresh_network || net::enter(e))               // loopback only (C003)
           && rlimits::enter(plan.rlimits, e)                      // backstop limits (C007)
           && caps::drop_all(plan.caps, e)                         // nobody, no caps, no_new_privs (C001, C009)
           && landlock::build_ruleset(plan.landlock, ruleset, e)   // over the finished tree (C010)
           && (ruleset < 0 || place_fd(ruleset, KILN_FD_LANDLOCK, e));  // kiln-init restricts itself to it
}

}  // namespace

void jail_main(const JailPlan& plan) noexcept {
    ChildError e;
    // Into the run's cgroups before anything else (C007), while the tasks
    // files are still open: everything from here on counts there.
    bool joined = cgroup::join_self(plan.cgroup_entry) ||
                  fail(e, KILN_HINT_CGROUP, "write", "cgroup v1 tasks (joining the run's group)");
    if (!arrange_fds(plan)) ::_exit(125);
    if (!joined) report_and_exit(e);
    // A fresh network namespace (C003) is made before the wait, not by the
    // clone: the kernel takes about 0.6 ms to set one up, and here that
    // overlaps with the parent writing the id maps. The new user namespace
    // already gives this process CAP_SYS_ADMIN over it.
    bool networked = !plan.fresh_network || net::make_namespace(e);
    if (!wait_for_parent()) ::_exit(125);  // the parent gave up: no one to report to
    if (!networked || !setup(plan, e)) report_and_exit(e);
    // kiln-init from the descriptor the server opened: its path is not in
    // the jail. The exec ends the sharing of the server's memory, closes
    // the setup error pipe (the parent's signal to go on) and the sync pipe.
    ::syscall(SYS_execveat, KILN_FD_INIT_EXE, "", plan.init_argv.data(), plan.envp.data(), AT_EMPTY_PATH);
    fail(e, KILN_HINT_EXEC, "execveat", "kiln-init");
    report_and_exit(e);
}

}  // namespace kiln::sandbox
