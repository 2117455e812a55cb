#include "sandbox/jail.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/net.hpp"

namespace kiln::sandbox {

void JailPlan::seal() {
    argv.clear();
    envp.clear();
    for (auto& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& v : env_storage) envp.push_back(v.data());
    envp.push_back(nullptr);
}

namespace {

pid_t g_program = 0;  // per process: the init's copy, for the signal handler

[[noreturn]] void report_and_exit(const ChildError& e) noexcept {
    write_all(kFdError, &e, sizeof e);
    ::_exit(127);
}

// Moves the parent's descriptors to 0..5 and closes everything else the
// server had open (C012): other runs' pipes, the audit log, sockets.
bool arrange_fds(const JailPlan& plan) noexcept {
    int high[kChildFdCount];
    for (int i = 0; i < kChildFdCount; ++i) {
        high[i] = ::fcntl(plan.fds[i], F_DUPFD_CLOEXEC, 64);
        if (high[i] < 0) return false;
    }
    for (int i = 0; i < kChildFdCount; ++i) {
        int flags = i >= kFdSync ? O_CLOEXEC : 0;
        if (::dup3(high[i], i, flags) < 0) return false;
    }
    return ::syscall(SYS_close_range, kChildFdCount, ~0U, 0) == 0;
}

bool wait_for_parent() noexcept {
    char go = 0;
    for (;;) {
        ssize_t n = ::read(kFdSync, &go, 1);
        if (n < 0 && errno == EINTR) continue;
        return n == 1;
    }
}

void forward_signal(int sig) {
    if (g_program > 0) ::kill(g_program, sig);
}

bool reset_signals() noexcept {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);  // EINVAL for KILL/STOP: fine
    sigset_t none;
    sigemptyset(&none);
    return ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof(unsigned long) * 1) == 0;
}

// execvpe without allocation: tries each PATH directory in turn.
[[noreturn]] void exec_program(const JailPlan& plan) noexcept {
    ChildError e;
    const char* file = plan.argv[0];
    bool has_slash = false;
    for (const char* p = file; *p; ++p) has_slash |= *p == '/';
    if (has_slash) {
        ::execve(file, plan.argv.data(), plan.envp.data());
        fail(e, "execve", file);
        report_and_exit(e);
    }
    int saved = ENOENT;
    char path[4096];
    for (const auto& dir : plan.path_dirs) {
        std::size_t n = 0;
        for (const char* s = dir.c_str(); *s && n < sizeof path - 2; ++s) path[n++] = *s;
        path[n++] = '/';
        for (const char* s = file; *s && n < sizeof path - 1; ++s) path[n++] = *s;
        path[n] = '\0';
        ::execve(path, plan.argv.data(), plan.envp.data());
        if (errno != ENOENT && errno != ENOTDIR) saved = errno;
    }
    errno = saved;
    fail(e, "execve", file);
    report_and_exit(e);
}

[[noreturn]] void run_program(const JailPlan& plan) noexcept {
    ChildError e;
    if (!reset_signals()) {
        fail(e, "rt_sigprocmask");
        report_and_exit(e);
    }
    if (::chdir(plan.cwd.c_str()) != 0) {
        fail(e, "chdir", plan.cwd.c_str());
        report_and_exit(e);
    }
    ::close(kFdSync);
    ::close(kFdStatus);
    // Seccomp last: after it, even the setup's own calls would be refused.
    if (!seccomp::enter(*plan.seccomp, e)) report_and_exit(e);
    exec_program(plan);
}

// The program's stack until its execve (the x86-64 ABI wants it 16-byte
// aligned). The program runs only the few calls of run_program on it.
alignas(16) char g_program_stack[64 * 1024];

int program_entry(void* plan) {
    run_program(*static_cast<const JailPlan*>(plan));  // seccomp (C006) is its last step
}

// pid 1 of the jail: reaps orphans until the program exits.
[[noreturn]] void run_init(pid_t program, const JailPlan& plan) noexcept {
    g_program = program;
    struct sigaction fwd {};
    fwd.sa_handler = forward_signal;
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) ::sigaction(sig, &fwd, nullptr);
    ::close(kFdError);  // only the program reports from here
    ::close(kFdSync);
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd : {kFdStdin, kFdStdout, kFdStderr}) {
        if (null >= 0) ::dup3(null, fd, 0);
        else ::close(fd);
    }
    if (null >= 0) ::close(null);
    ChildError ignored;
    seccomp::enter(*plan.init_seccomp, ignored);
    for (;;) {
        int status = 0;
        pid_t pid = static_cast<pid_t>(::syscall(SYS_wait4, -1, &status, 0, nullptr));
        if (pid < 0 && errno == EINTR) continue;
        if (pid < 0) ::_exit(126);
        if (pid == program) {
            write_all(kFdStatus, &status, sizeof status);
            ::_exit(0);  // the kernel now kills the rest of the pid namespace
        }
    }
}

// The setup sequence, in order. Each step names the control it serves.
bool setup(const JailPlan& plan, ChildError& e) noexcept {
    int bind_fds[mount::kMaxBinds];
    // The jail sees its own cgroup as "/" (C012); the parent has moved us in.
    if (::unshare(CLONE_NEWCGROUP) != 0) return fail(e, "unshare", "CLONE_NEWCGROUP");
    // Opened while still holding the server's host ids (C002).
    if (!mount::open_sources(plan.mounts, bind_fds, e)) return false;
    // The jail ids; namespace capabilities are kept until drop_all (C001).
    if (!user::enter(plan.user, e)) return false;
    // Set after the id change, which clears it: the jail dies with the server thread.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return fail(e, "prctl PR_SET_PDEATHSIG");
    // This process, the jail's init, is a copy of the server's memory (audit
    // keys included). Not dumpable: the program, same uid, cannot open
    // /proc/1/mem, environ or maps. The id change clears the flag only when
    // the host uid changes, which it does not when Kiln runs rootless (C012).
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return fail(e, "prctl PR_SET_DUMPABLE");
    // Fresh tmpfs root, read-only binds, /proc, /dev, /tmp, /workspace, pivot_root (C002, C012).
    if (!mount::enter(plan.mounts, bind_fds, e)) return false;
    if (::sethostname("kiln", 4) != 0) return fail(e, "sethostname");
    // Loopback only (C003).
    if (!net::enter(e)) return false;
    // Backstop limits (C007).
    if (!rlimits::enter(plan.rlimits, e)) return false;
    // As nobody without any capability from here on; no_new_privs (C001, C009).
    if (!caps::drop_all(plan.caps, e)) return false;
    // LSM ruleset over the finished tree (C010); needs no_new_privs.
    if (!landlock::enter(plan.landlock, e)) return false;
    return true;
}

}  // namespace

void jail_main(const JailPlan& plan) noexcept {
    if (!arrange_fds(plan)) ::_exit(125);
    if (!wait_for_parent()) ::_exit(125);  // the parent gave up: no one to report to
    ChildError e;
    if (!setup(plan, e)) report_and_exit(e);
    // The program starts as a vfork-style child: it borrows this process's
    // memory and runs on its own small stack until its execve, while this
    // process waits. A fork would copy the whole address space (a copy of
    // the server's) only for execve to throw the copy away at once.
    pid_t program = ::clone(program_entry, g_program_stack + sizeof g_program_stack, CLONE_VM | CLONE_VFORK | SIGCHLD,
                            const_cast<JailPlan*>(&plan));
    if (program < 0) {
        fail(e, "clone", "program");
        report_and_exit(e);
    }
    run_init(program, plan);
}

}  // namespace kiln::sandbox
