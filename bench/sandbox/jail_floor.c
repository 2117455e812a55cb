/* jail-floor: a lower bound for what any jail meeting issue #3 asks of the
 * kernel per run, to set Kiln's numbers against (bench/sandbox/compare.py,
 * bench/tools/run_code_latency.py).
 *
 *     jail-floor [--spec] [--netns FILE] PROGRAM [ARGS...]   (root, cgroup v1 host)
 *
 * It does only kernel work, in the cheapest order, from a static musl
 * binary. Always: a cgroup in each of the memory, pids, cpu and cpuacct
 * hierarchies with its limits, below this process's own group as Kiln's
 * are below the server's, which the child joins itself; new user,
 * pid, mount, ipc, uts and cgroup namespaces; a tmpfs root with /usr bound
 * read-only, the /bin /lib /lib64 links, a fresh /proc and a /tmp tmpfs,
 * pivot_root and the old root detached; pid 1 starts the program as its
 * child, and the groups are removed afterwards. Without --spec that is
 * all: no network namespace, /etc, /dev, workspace, capabilities,
 * no_new_privs, rlimits, seccomp or Landlock. So Kiln can approach this
 * figure, never reach it. Not a sandbox: the program keeps every
 * capability of its user namespace.
 *
 * --spec adds the rest of what Kiln's jail does in the kernel, the way
 * Kiln does it and from the same tables (sandbox/jail_tables.h): the
 * network namespace (a new one with loopback up, or with --netns the given
 * one joined, as a session's runs share one in the server); the host's
 * system paths, the /etc files and binds and the /dev binds and links of
 * Kiln's tree (sandbox/mount.cpp); /workspace bound from a directory of
 * the host; the hostname; the supplementary groups dropped and the ids
 * switched; the rlimits of a run with the default limits (not the shares
 * of the ucount budgets, which depend on the host's users); every
 * capability dropped from every set, securebits locked, no_new_privs;
 * Kiln's Landlock ruleset for the kernel's ABI (writes only to /tmp,
 * /workspace and /dev's files); Kiln's own two seccomp filters (the base
 * one inherited by the program, the no-new-process one on pid 1), read
 * from the .bpf files the bench build writes beside this program; stdout
 * and stderr through pipes the parent drains. What Kiln does
 * besides, in user space, is left out: validation, error reporting,
 * statistics, the protocol and the audit log. That makes the difference
 * between Kiln and `--spec` Kiln's own cost, and `--spec` against the bare
 * program the price of the jail the issue describes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/securebits.h>

#include "sandbox/jail_tables.h"

/* <linux/mount.h> clashes with glibc's <sys/mount.h> (musl's has none of
 * it): the new mount API's bits used here, under names of their own. */
#define FLOOR_OPEN_TREE_CLONE 1
#define FLOOR_MOVE_MOUNT_F_EMPTY_PATH 0x4
struct floor_mount_attr {
    unsigned long long attr_set, attr_clr, propagation, userns_fd;
};
#define COUNT(array) (sizeof(array) / sizeof *(array))

#define NGROUPS 4
static const char *const kControllers[NGROUPS] = {"memory", "pids", "cpu", "cpuacct"};
static char group_dirs[NGROUPS][640];
static int tasks_fds[NGROUPS];
static int go_pipe[2];
static char **program;
static int spec;                /* --spec */
static const char *netns_file;  /* --spec --netns FILE */
static int out_pipe[2], err_pipe[2];

static void die(const char *step) {
    fprintf(stderr, "jail-floor: %s: %s\n", step, strerror(errno));
    _exit(111);
}

/* Writes text to path; flags add O_CREAT for the jail's own files. */
static void write_text(const char *path, const char *text, int flags) {
    int fd = open(path, O_WRONLY | O_CLOEXEC | flags, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) < 0) die(path);
    close(fd);
}

static void group_file(int i, const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%.640s/%s", group_dirs[i], name);
    write_text(path, text, 0);
}

/* This process's own group in a v1 hierarchy ("" for the root), from
 * /proc/self/cgroup: the runs' groups go below it, as Kiln's go below the
 * server's, so that both charge the same chain of ancestor groups. */
static void own_group(const char *controller, char *out, size_t size) {
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[1024];
    out[0] = 0;
    while (f && fgets(line, sizeof line, f)) {
        char *list = strchr(line, ':'), *path = list ? strchr(list + 1, ':') : NULL;
        if (!path) continue;
        *path++ = 0;
        path[strcspn(path, "\n")] = 0;
        for (char *c = strtok(list + 1, ","); c; c = strtok(NULL, ","))
            if (strcmp(c, controller) == 0) snprintf(out, size, "%s", strcmp(path, "/") == 0 ? "" : path);
    }
    if (f) fclose(f);
}

static void make_groups(void) {
    for (int i = 0; i < NGROUPS; ++i) {
        char own[512];
        own_group(kControllers[i], own, sizeof own);
        snprintf(group_dirs[i], sizeof group_dirs[i], "/sys/fs/cgroup/%s%s/jail-floor-%d", kControllers[i], own,
                 (int)getpid());
        if (mkdir(group_dirs[i], 0755) != 0) die(group_dirs[i]);
        char path[1024];
        snprintf(path, sizeof path, "%.640s/tasks", group_dirs[i]);
        tasks_fds[i] = open(path, O_WRONLY | O_CLOEXEC);
        if (tasks_fds[i] < 0) die(path);
    }
    /* A run's default limits, set the way sandbox/cgroup_v1.cpp sets them. */
    char text[32];
    snprintf(text, sizeof text, "%llu", KILN_DEFAULT_MEMORY_BYTES);
    group_file(0, "memory.limit_in_bytes", text);
    snprintf(text, sizeof text, "%u", KILN_DEFAULT_PIDS);
    group_file(1, "pids.max", text);
    group_file(2, "cpu.cfs_period_us", "100000");
    snprintf(text, sizeof text, "%lld", (long long)(KILN_DEFAULT_CPUS * 100000));
    group_file(2, "cpu.cfs_quota_us", text);
}

static void remove_groups(void) {
    for (int i = 0; i < NGROUPS; ++i)
        if (rmdir(group_dirs[i]) != 0) die(group_dirs[i]);
}

/* The fresh /proc and the size-limited /tmp every jail has. */
static void mount_proc(void) {
    if (mkdir("/tmp/proc", 0755) != 0) die("mkdir proc");
    if (mount("proc", "/tmp/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) die("mount proc");
}

static void mount_tmp(void) {
    char options[64];
    snprintf(options, sizeof options, "size=%llu,mode=1777", KILN_DEFAULT_TMP_SIZE_BYTES);
    if (mkdir("/tmp/tmp", 0755) != 0) die("mkdir tmp");
    if (mount("tmpfs", "/tmp/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options) != 0) die("tmp tmpfs");
}

/* --spec: the host paths bound into the jail, opened before the root
 * tmpfs hides /tmp (Kiln opens its bind sources the same way). */
#define WORKSPACE "/tmp/jail-floor-workspace"
#define NSOURCES (COUNT(kiln_system_paths) + 1 + COUNT(kiln_etc_mirrored) + COUNT(kiln_dev_bound))
static const char *source_paths[NSOURCES];
static int source_fds[NSOURCES];
static int nsources;

static void open_sources(void) {
    if (mkdir(WORKSPACE, 0777) != 0 && errno != EEXIST) die(WORKSPACE);
    if (chmod(WORKSPACE, 0777) != 0) die(WORKSPACE); /* the jail writes as nobody */
    const char *all[NSOURCES];
    size_t n = 0;
    for (size_t i = 0; i < COUNT(kiln_system_paths); ++i) all[n++] = kiln_system_paths[i];
    all[n++] = WORKSPACE;
    for (size_t i = 0; i < COUNT(kiln_etc_mirrored); ++i) all[n++] = kiln_etc_mirrored[i];
    for (size_t i = 0; i < COUNT(kiln_dev_bound); ++i) all[n++] = kiln_dev_bound[i];
    for (size_t i = 0; i < n; ++i) {
        struct stat st;
        if (lstat(all[i], &st) != 0 || S_ISLNK(st.st_mode)) continue; /* missing, or a link made below */
        source_paths[nsources] = all[i];
        source_fds[nsources] = open(all[i], O_PATH | O_CLOEXEC);
        if (source_fds[nsources] < 0) die(all[i]);
        ++nsources;
    }
}

/* A read-only (or, for the workspace, writable) bind of an opened source,
 * by the new mount API as Kiln does it. */
static void bind_source(const char *source, const char *target, unsigned long long attr) {
    int i = 0;
    while (i < nsources && strcmp(source_paths[i], source) != 0) ++i;
    if (i == nsources) return;
    struct stat st;
    if (fstat(source_fds[i], &st) != 0) die(source);
    if (S_ISDIR(st.st_mode) ? mkdir(target, 0755) != 0 : close(open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0644)) != 0)
        die(target);
    int tree = (int)syscall(SYS_open_tree, source_fds[i], "", FLOOR_OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    if (tree < 0) die("open_tree");
    if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target, FLOOR_MOVE_MOUNT_F_EMPTY_PATH) != 0) die("move_mount");
    close(tree);
    struct floor_mount_attr ma = {.attr_set = attr};
    if (syscall(SYS_mount_setattr, AT_FDCWD, target, AT_RECURSIVE, &ma, sizeof ma) != 0) die("mount_setattr");
    close(source_fds[i]);
}

/* A host path mirrored: a link stays a link, anything else is bound. */
static void mirror(const char *path, const char *target, unsigned long long attr) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISLNK(st.st_mode)) {
        char buf[4096];
        ssize_t n = readlink(path, buf, sizeof buf - 1);
        if (n < 0) die(path);
        buf[n] = 0;
        if (symlink(buf, target) != 0) die(target);
        return;
    }
    bind_source(path, target, attr);
}

/* Writes one of the jail's /etc files, with the jail's ids (nobody). */
static void write_etc(const char *target, const char *format) {
    char text[256];
    snprintf(text, sizeof text, format, 65534u, 65534u);
    write_text(target, text, O_CREAT);
}

static void build_spec_tree(void) {
    char target[256];
    for (size_t i = 0; i < COUNT(kiln_system_paths); ++i) {
        snprintf(target, sizeof target, "/tmp%s", kiln_system_paths[i]);
        mirror(kiln_system_paths[i], target, KILN_ATTR_SYSTEM);
    }
    if (mkdir("/tmp/etc", 0755) != 0) die("mkdir etc");
    write_etc("/tmp/etc/passwd", KILN_ETC_PASSWD_FORMAT);
    write_etc("/tmp/etc/group", KILN_ETC_GROUP_FORMAT);
    write_text("/tmp/etc/hosts", KILN_ETC_HOSTS, O_CREAT);
    write_text("/tmp/etc/nsswitch.conf", KILN_ETC_NSSWITCH, O_CREAT);
    for (size_t i = 0; i < COUNT(kiln_etc_mirrored); ++i) {
        snprintf(target, sizeof target, "/tmp%s", kiln_etc_mirrored[i]);
        mirror(kiln_etc_mirrored[i], target, KILN_ATTR_SYSTEM);
    }
    mount_proc();
    if (mkdir("/tmp/dev", 0755) != 0) die("mkdir dev");
    for (size_t i = 0; i < COUNT(kiln_dev_bound); ++i) {
        snprintf(target, sizeof target, "/tmp%s", kiln_dev_bound[i]);
        bind_source(kiln_dev_bound[i], target, KILN_ATTR_DEVICE);
    }
    for (size_t i = 0; i < COUNT(kiln_dev_links); ++i) {
        snprintf(target, sizeof target, "/tmp%s", kiln_dev_links[i].path);
        if (symlink(kiln_dev_links[i].target, target) != 0) die(target);
    }
    mount_tmp();
    bind_source(WORKSPACE, "/tmp/workspace", KILN_ATTR_WRITABLE);
}

static void build_minimal_tree(void) {
    if (mkdir("/tmp/usr", 0755) != 0) die("mkdir usr");
    if (mount("/usr", "/tmp/usr", NULL, MS_BIND | MS_REC, NULL) != 0) die("bind /usr");
    if (mount(NULL, "/tmp/usr", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        die("/usr read-only");
    if (symlink("usr/bin", "/tmp/bin") != 0 || symlink("usr/lib", "/tmp/lib") != 0 ||
        symlink("usr/lib64", "/tmp/lib64") != 0)
        die("symlinks");
    mount_proc();
    mount_tmp();
}

static void build_root(void) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("make / private");
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=0755") != 0) die("root tmpfs");
    if (spec)
        build_spec_tree();
    else
        build_minimal_tree();
    if (chdir("/tmp") != 0 || syscall(SYS_pivot_root, ".", ".") != 0) die("pivot_root");
    if (umount2(".", MNT_DETACH) != 0 || chdir("/") != 0) die("detach old root");
    if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        die("root read-only");
}

/* --spec: everything after the tree, in Kiln's order (sandbox/jail.cpp). */
static void loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq req;
    memset(&req, 0, sizeof req);
    strcpy(req.ifr_name, "lo");
    if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &req) != 0) die("lo flags");
    req.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &req) != 0) die("lo up");
    close(fd);
}

/* Kiln's rlimits for a run with the default limits (sandbox/rlimits.cpp). */
static void set_rlimits(void) {
    const struct { int resource; rlim_t value; } limits[] = {
        {RLIMIT_CORE, KILN_RLIMIT_CORE_VALUE},
        {RLIMIT_NOFILE, KILN_RLIMIT_NOFILE_VALUE},
        {RLIMIT_FSIZE, kiln_rlimit_fsize(KILN_DEFAULT_TMP_SIZE_BYTES)},
        {RLIMIT_STACK, KILN_RLIMIT_STACK_VALUE},
        {RLIMIT_NPROC, kiln_rlimit_nproc(KILN_DEFAULT_PIDS)},
        {RLIMIT_CPU, kiln_rlimit_cpu(KILN_DEFAULT_TIMEOUT_MS, KILN_DEFAULT_CPUS)}};
    for (size_t i = 0; i < COUNT(limits); ++i) {
        struct rlimit cur, lim = {limits[i].value, limits[i].value};
        if (getrlimit(limits[i].resource, &cur) != 0 || setrlimit(limits[i].resource, &lim) != 0) die("rlimit");
    }
}

static void drop_capabilities(void) {
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) die("drop bounding set");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) die("clear ambient set");
    if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                     SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                                     SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
              0, 0, 0) != 0)
        die("securebits");
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) != 0) die("capset");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs");
}

static void landlock_rule(int ruleset, const char *path, unsigned long long access) {
    struct landlock_path_beneath_attr pb = {.allowed_access = access, .parent_fd = open(path, O_PATH | O_CLOEXEC)};
    if (pb.parent_fd < 0 || syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0)
        die("landlock rule");
    close(pb.parent_fd);
}

/* Kiln's ruleset for the kernel's ABI (sandbox/landlock.cpp): reads
 * anywhere, writes only to /dev's files and under /tmp and /workspace. The
 * attribute's size tells the kernel which of its fields are there. */
static void restrict_landlock(void) {
    int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi <= 0) die("landlock ABI");
    struct { unsigned long long handled_access_fs, handled_access_net, scoped; } attr = {
        kiln_landlock_handled_fs(abi), 0, kiln_landlock_scoped(abi)};
    size_t size = abi >= 6 ? sizeof attr : abi >= 4 ? 2 * sizeof(unsigned long long) : sizeof(unsigned long long);
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (ruleset < 0) die("landlock ruleset");
    landlock_rule(ruleset, "/", KILN_LANDLOCK_READ_ONLY);
    landlock_rule(ruleset, "/dev", kiln_landlock_dev(abi));
    landlock_rule(ruleset, "/tmp", kiln_landlock_read_write(abi));
    landlock_rule(ruleset, "/workspace", kiln_landlock_read_write(abi));
    if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) die("landlock_restrict_self");
    close(ruleset);
}

/* Kiln's own seccomp filters, as the bench build writes them beside this
 * program (kiln-seccomp-gen --raw, bench/sandbox/meson.build). */
static struct sock_filter base_filter[BPF_MAXINSNS], no_new_process_filter[BPF_MAXINSNS];
static struct sock_fprog base_prog = {0, base_filter}, no_new_process_prog = {0, no_new_process_filter};

static void load_filter(const char *dir, const char *name, struct sock_fprog *prog) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(path); /* built with -Dbench=true: ninja -C BUILD bench/sandbox/seccomp-base.bpf */
    ssize_t n = read(fd, prog->filter, sizeof(struct sock_filter) * BPF_MAXINSNS);
    if (n <= 0 || n % (ssize_t)sizeof(struct sock_filter) != 0) die(path);
    prog->len = (unsigned short)(n / (ssize_t)sizeof(struct sock_filter));
    close(fd);
}

static void load_filters(void) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) die("/proc/self/exe");
    exe[n] = 0;
    *strrchr(exe, '/') = 0;
    load_filter(exe, "seccomp-base.bpf", &base_prog);
    load_filter(exe, "seccomp-no-new-process.bpf", &no_new_process_prog);
}

static void install_filter(const struct sock_fprog *prog) {
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) != 0) die("seccomp");
}

/* The program's stdout and stderr go through pipes the parent drains
 * onto its own (--spec). */
static void drain_output(void) {
    struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    char buf[16384];
    int open_ends = 2;
    while (open_ends > 0) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR) die("poll");
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) continue;
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n > 0 && write(i + 1, buf, (size_t)n) < 0) die("copy output");
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_ends;
            }
        }
    }
}

/* pid 1 of the new pid namespace. */
static int jail(void *unused) {
    (void)unused;
    for (int i = 0; i < NGROUPS; ++i)
        if (write(tasks_fds[i], "0", 1) != 1) die("join cgroup");
    if (spec && !netns_file && unshare(CLONE_NEWNET) != 0) die("network namespace");
    char go;
    if (read(go_pipe[0], &go, 1) != 1) _exit(111);  /* id maps written */
    if (unshare(CLONE_NEWCGROUP) != 0) die("cgroup namespace");
    if (spec) {
        /* Kiln's ids: nobody inside is nobody outside; the namespace's
         * capabilities stay until drop_capabilities(). */
        open_sources();
        if (syscall(SYS_setgroups, 0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
            setresuid(65534, 65534, 65534) != 0)
            die("jail ids");
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die("pdeathsig");
    } else if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) {
        die("jail ids"); /* the jail's root, host nobody */
    }
    build_root();
    if (spec) {
        if (sethostname("kiln", 4) != 0) die("hostname");
        if (!netns_file) loopback_up();
        set_rlimits();
        drop_capabilities();
        restrict_landlock();
        install_filter(&base_prog); /* the program inherits it, as from kiln-init */
    }
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        if (spec && (dup2(out_pipe[1], 1) < 0 || dup2(err_pipe[1], 2) < 0)) die("dup2");
        execv(program[0], program);
        die(program[0]);
    }
    if (spec) install_filter(&no_new_process_prog); /* on pid 1 itself, as kiln-init does */
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) die("waitpid");
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

static void usage(void) {
    fprintf(stderr, "usage: jail-floor [--spec] [--netns FILE] /ABSOLUTE/PROGRAM [ARGS...]  (root, cgroup v1 host)\n");
    exit(2);
}

int main(int argc, char **argv) {
    int arg = 1;
    for (; arg < argc && argv[arg][0] == '-'; ++arg) {
        if (strcmp(argv[arg], "--spec") == 0)
            spec = 1;
        else if (strcmp(argv[arg], "--netns") == 0 && arg + 1 < argc)
            netns_file = argv[++arg];
        else
            usage();
    }
    if (arg == argc || argv[arg][0] != '/' || (netns_file && !spec)) usage();
    program = argv + arg;
    if (spec) load_filters();
    make_groups();
    if (pipe2(go_pipe, O_CLOEXEC) != 0) die("pipe");
    if (spec && (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0)) die("pipe");
    if (netns_file) {
        /* The shared namespace, inherited by the clone (as the server does). */
        int ns = open(netns_file, O_RDONLY | O_CLOEXEC);
        if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) die(netns_file);
        close(ns);
    }
    static char stack[64 * 1024] __attribute__((aligned(16)));
    int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD;
    pid_t child = clone(jail, stack + sizeof stack, flags, NULL);
    if (child < 0) die("clone");
    char path[64];
    const char *map = spec ? "65534 65534 1\n" : "0 65534 1\n"; /* nobody on the host either way */
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)child);
    write_text(path, map, 0);
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)child);
    write_text(path, map, 0);
    if (write(go_pipe[1], "g", 1) != 1) die("release the jail");
    if (spec) {
        close(out_pipe[1]);
        close(err_pipe[1]);
        drain_output();
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child) die("waitpid");
    remove_groups();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
