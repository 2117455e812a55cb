/* kiln-init: pid 1 of every jail.
 *
 * The jail's setup process (sandbox/jail.cpp) builds the namespaces, mounts,
 * ids and limits while it shares the server's memory, then execs this small
 * static program, so that nothing inside the jail holds a copy of the
 * server's memory (audit keys, other sessions' data). kiln-init finishes
 * the confinement that must outlive that exec, starts the program, and
 * stays as the pid namespace's init:
 *
 *   1. not dumpable: the program runs as the same uid and must not open
 *      /proc/1/mem or write our status pipe through it;
 *   2. Landlock restrict_self on the ruleset the setup built (C010);
 *   3. the base seccomp filter (C006) on itself, which the program
 *      inherits: the kernel checks and compiles it once per run;
 *   4. the program starts vfork-style (no copy of our memory), resets its
 *      signals, enters its working directory, under the strict profile
 *      stacks the no-new-process filter last, and execs; a failure goes
 *      back to the server as an error record on KILN_FD_EXEC_ERROR, whose
 *      EOF otherwise says "started";
 *   5. kiln-init stacks the no-new-process filter on itself, forwards
 *      termination signals, reaps orphans, and when the program exits
 *      writes its wait status on KILN_FD_STATUS and exits, which kills the
 *      whole namespace.
 *
 * See init_protocol.h for the descriptors and arguments. C, static, and no
 * allocation: it runs in any rootfs and costs one small exec. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/init_protocol.h"

extern char** environ;

static pid_t g_program;
static alignas(16) char g_program_stack[64 * 1024];
static struct sock_filter g_base_insns[BPF_MAXINSNS];
static struct sock_filter g_extra_insns[BPF_MAXINSNS];

struct program_args {
    const char* cwd;
    const char* path_dirs;
    char** argv;
    const struct sock_fprog* strict_filter; /* NULL under the default profile */
};

static void write_all(int fd, const void* data, size_t len) {
    const char* p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        p += n;
        len -= (size_t)n;
    }
}

/* Sends errno, the kind of step and "step arg" to the server, then exits. */
static _Noreturn void report(enum kiln_hint hint, const char* step, const char* arg) {
    struct kiln_child_error e;
    memset(&e, 0, sizeof e);
    e.err = errno;
    e.hint = hint;
    size_t i = 0;
    for (const char* s = step; *s && i + 1 < sizeof e.step; ++s) e.step[i++] = *s;
    if (arg && i + 2 < sizeof e.step) {
        e.step[i++] = ' ';
        for (const char* s = arg; *s && i + 1 < sizeof e.step; ++s) e.step[i++] = *s;
    }
    write_all(KILN_FD_EXEC_ERROR, &e, sizeof e);
    _exit(127);
}

/* Reads a raw sock_filter array the setup left in a memfd. */
static void read_filter(int fd, struct sock_filter* insns, struct sock_fprog* prog, const char* which) {
    size_t got = 0, cap = sizeof(struct sock_filter) * BPF_MAXINSNS;
    for (;;) {
        ssize_t n = pread(fd, (char*)insns + got, cap - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) report(KILN_HINT_SECCOMP, "read seccomp filter", which);
        if (n == 0 || got + (size_t)n == cap) {
            got += (size_t)n;
            break;
        }
        got += (size_t)n;
    }
    if (got == 0 || got % sizeof(struct sock_filter) != 0) {
        errno = EINVAL;
        report(KILN_HINT_SECCOMP, "read seccomp filter", which);
    }
    prog->len = (unsigned short)(got / sizeof(struct sock_filter));
    prog->filter = insns;
    close(fd);
}

static int install_filter(const struct sock_fprog* prog) {
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog);
}

/* execvpe over the given directories, without allocation. */
static _Noreturn void exec_program(const struct program_args* a) {
    const char* file = a->argv[0];
    if (strchr(file, '/')) {
        execve(file, a->argv, environ);
        report(KILN_HINT_EXEC, "execve", file);
    }
    int saved = ENOENT;
    char path[4096];
    const char* dir = a->path_dirs;
    while (*dir) {
        size_t len = strcspn(dir, ":");
        size_t flen = strlen(file);
        if (len > 0 && len + 1 + flen < sizeof path) {
            memcpy(path, dir, len);
            path[len] = '/';
            memcpy(path + len + 1, file, flen + 1);
            execve(path, a->argv, environ);
            if (errno != ENOENT && errno != ENOTDIR) saved = errno;
        }
        dir += len;
        if (*dir == ':') ++dir;
    }
    errno = saved;
    report(KILN_HINT_EXEC, "execve", file);
}

/* The program, on its own stack in our memory until its execve. */
static int program_main(void* arg) {
    const struct program_args* a = arg;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, NULL); /* EINVAL for KILL/STOP: fine */
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) report(KILN_HINT_PROCESS, "sigprocmask", NULL);
    if (chdir(a->cwd) != 0) report(KILN_HINT_CWD, "chdir", a->cwd);
    /* Seccomp last: after it, even these calls could be refused. */
    if (a->strict_filter && install_filter(a->strict_filter) != 0) report(KILN_HINT_SECCOMP, "seccomp", "no-new-process filter");
    exec_program(a);
}

static void forward_signal(int sig) {
    if (g_program > 0) kill(g_program, sig);
}

static void stdio_to_dev_null(void) {
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd <= 2; ++fd) {
        if (null >= 0) dup3(null, fd, 0);
        else close(fd);
    }
    if (null >= 0) close(null);
}

/* The server's KILN_SIGNAL_END (deadline, cancellation): end the jail
 * here rather than be killed, so that every process is reaped by us. */
static void end_jail(int sig) {
    (void)sig;
    kill(-1, SIGKILL); /* in a pid namespace's init: everyone but us */
}

/* When the program exits, what is left of the jail is killed and every
 * process reaped by us, not by the kernel after our exit: the CPU time of
 * what we reap is in our rusage, the server's only CPU figure when it has
 * no cgroup (rootless), and the kernel's reaping would drop it. */
static _Noreturn void reap_until_program_exits(void) {
    int program_status = 0;
    for (;;) {
        int status = 0;
        pid_t pid = (pid_t)syscall(SYS_wait4, -1, &status, __WALL, NULL);
        if (pid < 0 && errno == EINTR) continue;
        if (pid < 0 && errno == ECHILD && g_program == 0) break;
        if (pid < 0) _exit(126);
        if (pid == g_program) {
            program_status = status;
            g_program = 0;
            kill(-1, SIGKILL);
        }
    }
    write_all(KILN_FD_STATUS, &program_status, sizeof program_status);
    _exit(0);
}

int main(int argc, char** argv) {
    if (argc < 6 || strcmp(argv[4], "--") != 0 || (strcmp(argv[3], "default") != 0 && strcmp(argv[3], "strict") != 0)) {
        errno = EINVAL;
        report(KILN_HINT_NONE, "kiln-init", "usage: kiln-init CWD PATH_DIRS default|strict -- PROGRAM ARGS...");
    }
    /* 1. Nobody in the jail may read or write our memory through /proc. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) report(KILN_HINT_PROCESS, "prctl", "PR_SET_DUMPABLE");
    /* The program gets neither our status pipe nor, once it runs, the error pipe. */
    if (fcntl(KILN_FD_EXEC_ERROR, F_SETFD, FD_CLOEXEC) != 0) report(KILN_HINT_PROCESS, "fcntl", "exec error pipe");
    if (fcntl(KILN_FD_STATUS, F_SETFD, FD_CLOEXEC) != 0) report(KILN_HINT_PROCESS, "fcntl", "status pipe");
    /* 2. Landlock, when the kernel has it (the setup leaves the fd closed otherwise). */
    if (fcntl(KILN_FD_LANDLOCK, F_GETFD) >= 0) {
        if (syscall(SYS_landlock_restrict_self, KILN_FD_LANDLOCK, 0) != 0) report(KILN_HINT_LANDLOCK, "landlock_restrict_self", NULL);
        close(KILN_FD_LANDLOCK);
    }
    struct sock_fprog base_filter, extra_filter;
    read_filter(KILN_FD_BASE_BPF, g_base_insns, &base_filter, "base");
    read_filter(KILN_FD_EXTRA_BPF, g_extra_insns, &extra_filter, "no-new-process");
    struct program_args a = {argv[1], argv[2], argv + 5, strcmp(argv[3], "strict") == 0 ? &extra_filter : NULL};

    /* 3. The base filter, for us and (inherited) the program. */
    if (install_filter(&base_filter) != 0) report(KILN_HINT_SECCOMP, "seccomp", "base filter");

    /* 4. The program; we wait here until it has exec'd (or failed). */
    g_program = clone(program_main, g_program_stack + sizeof g_program_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
    if (g_program < 0) report(KILN_HINT_PROCESS, "clone", "program");
    close(KILN_FD_EXEC_ERROR); /* the program's copy closed at its execve: the server sees EOF */

    /* 5. Init duties, under a filter that allows no new process, stacked
     * as soon as the program has exec'd (it does not inherit it then). */
    install_filter(&extra_filter); /* best effort: the program already runs under its own */
    struct sigaction fwd;
    memset(&fwd, 0, sizeof fwd);
    fwd.sa_handler = forward_signal;
    int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; ++i) sigaction(forwarded[i], &fwd, NULL);
    struct sigaction end;
    memset(&end, 0, sizeof end);
    end.sa_handler = end_jail;
    sigaction(KILN_SIGNAL_END, &end, NULL);
    sigset_t none; /* the setup started with every signal blocked */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    stdio_to_dev_null();
    reap_until_program_exits();
}
