/* jail-floor: a lower bound for what any jail meeting issue #3 asks of the
 * kernel per run, to set Kiln's numbers against (bench/sandbox/compare.py).
 *
 *     jail-floor PROGRAM [ARGS...]        (root, cgroup v1 host)
 *
 * It does only the kernel work the issue requires of every run, in the
 * cheapest order, from a static musl binary: a cgroup in each of the
 * memory, pids, cpu and cpuacct hierarchies with its limits, which the
 * child joins itself; new user, pid, mount, ipc, uts and cgroup namespaces
 * (no network namespace: Kiln makes that off the critical path); a tmpfs
 * root with /usr bound read-only, the /bin /lib /lib64 links, a fresh
 * /proc and a /tmp tmpfs, pivot_root and the old root detached; pid 1
 * starts the program as its child, and the groups are removed afterwards.
 *
 * It leaves out what Kiln does besides: /etc and /dev, a workspace,
 * capabilities, no_new_privs, rlimits, seccomp, Landlock, the network
 * namespace, validation, output capture, statistics, error reporting.
 * So Kiln can approach this figure, never reach it. Not a sandbox: the
 * program keeps every capability of its user namespace. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NGROUPS 4
static const char *const kControllers[NGROUPS] = {"memory", "pids", "cpu", "cpuacct"};
static char group_dirs[NGROUPS][96];
static int tasks_fds[NGROUPS];
static int go_pipe[2];
static char **program;

static void die(const char *step) {
    fprintf(stderr, "jail-floor: %s: %s\n", step, strerror(errno));
    _exit(111);
}

static void write_text(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) < 0) die(path);
    close(fd);
}

static void group_file(int i, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", group_dirs[i], name);
    write_text(path, text);
}

static void make_groups(void) {
    for (int i = 0; i < NGROUPS; ++i) {
        snprintf(group_dirs[i], sizeof group_dirs[i], "/sys/fs/cgroup/%s/jail-floor-%d", kControllers[i], (int)getpid());
        if (mkdir(group_dirs[i], 0755) != 0) die(group_dirs[i]);
        char path[512];
        snprintf(path, sizeof path, "%s/tasks", group_dirs[i]);
        tasks_fds[i] = open(path, O_WRONLY | O_CLOEXEC);
        if (tasks_fds[i] < 0) die(path);
    }
    group_file(0, "memory.limit_in_bytes", "268435456");
    group_file(1, "pids.max", "64");
    group_file(2, "cpu.cfs_quota_us", "100000");
}

static void remove_groups(void) {
    for (int i = 0; i < NGROUPS; ++i)
        if (rmdir(group_dirs[i]) != 0) die(group_dirs[i]);
}

static void build_root(void) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("make / private");
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") != 0) die("root tmpfs");
    if (mkdir("/tmp/usr", 0755) != 0) die("mkdir usr");
    if (mount("/usr", "/tmp/usr", NULL, MS_BIND | MS_REC, NULL) != 0) die("bind /usr");
    if (mount(NULL, "/tmp/usr", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        die("/usr read-only");
    if (symlink("usr/bin", "/tmp/bin") != 0 || symlink("usr/lib", "/tmp/lib") != 0 ||
        symlink("usr/lib64", "/tmp/lib64") != 0)
        die("symlinks");
    if (mkdir("/tmp/proc", 0755) != 0) die("mkdir proc");
    if (mount("proc", "/tmp/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) die("mount proc");
    if (mkdir("/tmp/tmp", 0755) != 0) die("mkdir tmp");
    if (mount("tmpfs", "/tmp/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64m,mode=1777") != 0)
        die("tmp tmpfs");
    if (chdir("/tmp") != 0 || syscall(SYS_pivot_root, ".", ".") != 0) die("pivot_root");
    if (umount2(".", MNT_DETACH) != 0 || chdir("/") != 0) die("detach old root");
    if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        die("root read-only");
}

/* pid 1 of the new pid namespace. */
static int jail(void *unused) {
    (void)unused;
    for (int i = 0; i < NGROUPS; ++i)
        if (write(tasks_fds[i], "0", 1) != 1) die("join cgroup");
    char go;
    if (read(go_pipe[0], &go, 1) != 1) _exit(111);  /* id maps written */
    /* Become the jail's root (host nobody), with the namespace's capabilities. */
    if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) die("jail ids");
    if (unshare(CLONE_NEWCGROUP) != 0) die("cgroup namespace");
    build_root();
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        execv(program[0], program);
        die(program[0]);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) die("waitpid");
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] != '/') {
        fprintf(stderr, "usage: jail-floor /ABSOLUTE/PROGRAM [ARGS...]  (root, cgroup v1 host)\n");
        return 2;
    }
    program = argv + 1;
    make_groups();
    if (pipe2(go_pipe, O_CLOEXEC) != 0) die("pipe");
    static char stack[64 * 1024] __attribute__((aligned(16)));
    int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD;
    pid_t child = clone(jail, stack + sizeof stack, flags, NULL);
    if (child < 0) die("clone");
    char path[64];
    /* Root in the jail is nobody on the host. */
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)child);
    write_text(path, "0 65534 1\n");
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)child);
    write_text(path, "0 65534 1\n");
    if (write(go_pipe[1], "g", 1) != 1) die("release the jail");
    int status = 0;
    if (waitpid(child, &status, 0) != child) die("waitpid");
    remove_groups();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
