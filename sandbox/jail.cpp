#include "sandbox/jail.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/net.hpp"

namespace kiln::sandbox {

void JailPlan::seal() {
    std::string dirs;
    for (const auto& d : path_dirs) dirs += (dirs.empty() ? "" : ":") + d;
    init_argv_storage = {"kiln-init", cwd, dirs, seccomp == SeccompProfile::Strict ? "strict" : "default", "--"};
    init_argv_storage.insert(init_argv_storage.end(), argv_storage.begin(), argv_storage.end());
    init_argv.clear();
    envp.clear();
    for (auto& a : init_argv_storage) init_argv.push_back(a.data());
    init_argv.push_back(nullptr);
    for (auto& v : env_storage) envp.push_back(v.data());
    envp.push_back(nullptr);
}

namespace {

static_assert(sizeof(ChildError) == sizeof(kiln_child_error), "kiln-init sends the same error record");

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
    if (fd == target) return ::fcntl(fd, F_SETFD, 0) == 0 || fail(e, "fcntl", "F_SETFD");
    if (::dup3(fd, target, 0) < 0) return fail(e, "dup3");
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

// The setup sequence, in order. Each step names the control it serves.
bool setup(const JailPlan& plan, ChildError& e) noexcept {
    int bind_fds[mount::kMaxBinds];
    // The jail sees its own cgroup as "/" (C012); it was born in it.
    if (::unshare(CLONE_NEWCGROUP) != 0) return fail(e, "unshare", "CLONE_NEWCGROUP");
    // Opened while still holding the server's host ids (C002).
    if (!mount::open_sources(plan.mounts, bind_fds, e)) return false;
    // The jail ids; namespace capabilities are kept until drop_all (C001).
    if (!user::enter(plan.user, e)) return false;
    // The namespace's maxima, opened while the host's /proc is still there (C007).
    ucounts::Files budget_fds;
    if (!ucounts::open_files(*plan.budgets, budget_fds, e)) return false;
    // Set after the id change, which clears it: the jail dies with the server thread.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return fail(e, "prctl PR_SET_PDEATHSIG");
    // Fresh tmpfs root, read-only binds, /proc, /dev, /tmp, /workspace, pivot_root (C002, C012).
    if (!mount::enter(plan.mounts, bind_fds, e)) return false;
    // This namespace's share of the per-user kernel budgets, now that the
    // mounts (which need mount namespaces of their own) are made (C007).
    if (!ucounts::enter(*plan.budgets, budget_fds, e)) return false;
    if (::sethostname("kiln", 4) != 0) return fail(e, "sethostname");
    // Loopback only (C003).
    if (plan.fresh_network && !net::enter(e)) return false;
    // Backstop limits (C007).
    if (!rlimits::enter(plan.rlimits, e)) return false;
    // As nobody without any capability from here on; no_new_privs (C001, C009).
    if (!caps::drop_all(plan.caps, e)) return false;
    // LSM ruleset over the finished tree (C010), built here where the paths
    // resolve; kiln-init restricts itself to it after its exec.
    int ruleset = -1;
    if (!landlock::build_ruleset(plan.landlock, ruleset, e)) return false;
    if (ruleset >= 0 && !place_fd(ruleset, KILN_FD_LANDLOCK, e)) return false;
    return true;
}

}  // namespace

void jail_main(const JailPlan& plan) noexcept {
    ChildError e;
    // Into the run's cgroups before anything else (C007), while the tasks
    // files are still open: everything from here on counts there.
    bool joined = cgroup::join_self(plan.cgroup_entry) || fail(e, "write", "cgroup v1 tasks (joining the run's group)");
    if (!arrange_fds(plan)) ::_exit(125);
    if (!joined) report_and_exit(e);
    // A fresh network namespace (C003) is made before the wait, not by the
    // clone: the kernel takes about 0.6 ms to set one up, and here that
    // overlaps with the parent writing the id maps. The new user namespace
    // already gives this process CAP_SYS_ADMIN over it.
    bool networked = !plan.fresh_network || ::unshare(CLONE_NEWNET) == 0 || fail(e, "unshare", "CLONE_NEWNET");
    if (!wait_for_parent()) ::_exit(125);  // the parent gave up: no one to report to
    if (!networked || !setup(plan, e)) report_and_exit(e);
    // kiln-init from the descriptor the server opened: its path is not in
    // the jail. The exec ends the sharing of the server's memory, closes
    // the setup error pipe (the parent's signal to go on) and the sync pipe.
    ::syscall(SYS_execveat, KILN_FD_INIT_EXE, "", plan.init_argv.data(), plan.envp.data(), AT_EMPTY_PATH);
    fail(e, "execveat", "kiln-init");
    report_and_exit(e);
}

}  // namespace kiln::sandbox
