// The jail probe: a small static program the sandbox tests run inside the
// jail (like crun's tests/init.c). Each subcommand prints "key value" lines
// the tests parse, or acts out one hostile behaviour.
//
//   probe report                  ids, capabilities, no_new_privs, seccomp, fds, env
//   probe syscalls                "syscall <name> <errno>" for each dangerous call
//   probe mounts                  /proc/self/mounts
//   probe exists PATH...          "exists <path> 0|1"
//   probe read PATH...            "read <path> <errno> <bytes>": what open() and one read() answered
//   probe write PATH              "write <path> <errno>"
//   probe connect-tcp PORT        "connect <errno>" to 127.0.0.1:PORT
//   probe connect-abstract NAME   "connect <errno>" to the abstract unix socket NAME
//   probe socket                  "socket <errno>" for an AF_INET socket
//   probe families                "socket|socketpair <family> <plain|high> <errno>" for families 0-63 and
//                                 beyond, plain and with bits above 32 set in the argument
//   probe fork                    "fork <errno>"
//   probe cat                     copies stdin to stdout
//   probe budgets HOLD            takes all it can of each per-user kernel budget, prints
//                                 "<budget> <count> <errno>", "holding", then holds for HOLD s
//   probe forkbomb | memhog MB | spin | sleep SECONDS | daemon MARKER | flood BYTES | filltmp
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/inotify.h>
#include <mqueue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include <initializer_list>

extern char** environ;

namespace {

int err_of(long rc) { return rc < 0 ? errno : 0; }  // call right after the call

void print_status_lines() {
    FILE* f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs", 10) || !strncmp(line, "Seccomp:", 8) ||
            !strncmp(line, "Groups", 6)) {
            char* colon = strchr(line, ':');
            *colon = ' ';
            char* v = colon + 1;
            while (*v == '\t' || *v == ' ') ++v;
            *(colon + 1) = '\0';
            printf("%s%s", line, v);  // "CapEff 0000000000000000\n"
        }
    }
    fclose(f);
}

int report() {
    printf("uid %d\neuid %d\ngid %d\negid %d\n", getuid(), geteuid(), getgid(), getegid());
    print_status_lines();
    char host[64] = {};
    gethostname(host, sizeof host - 1);
    printf("hostname %s\n", host);
    DIR* d = opendir("/proc/self/fd");
    int dfd = d ? dirfd(d) : -1;
    while (d) {
        dirent* e = readdir(d);
        if (!e) break;
        if (e->d_name[0] == '.' || atoi(e->d_name) == dfd) continue;
        printf("fd %s\n", e->d_name);
    }
    if (d) closedir(d);
    for (char** e = environ; *e; ++e) printf("env %s\n", *e);
    char cwd[512];
    if (getcwd(cwd, sizeof cwd)) printf("cwd %s\n", cwd);
    return 0;
}

int syscalls() {
    // Each call is made and its errno captured before the next call runs.
    auto show = [](const char* name, long rc) { printf("syscall %s %d\n", name, rc < 0 ? errno : 0); };
    int sp[2];
    show("mount", mount("none", "/tmp", "tmpfs", 0, nullptr));
    show("umount2", umount2("/proc", MNT_DETACH));
    show("unshare", unshare(CLONE_NEWUSER));
    show("setns", syscall(SYS_setns, 0, 0));
    show("chroot", chroot("/tmp"));
    show("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
    show("ptrace", ptrace(PTRACE_TRACEME, 0, nullptr, nullptr));
    show("process_vm_readv", syscall(SYS_process_vm_readv, 1, nullptr, 0, nullptr, 0, 0));
    show("bpf", syscall(SYS_bpf, BPF_PROG_LOAD, nullptr, 0));
    show("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
    show("add_key", syscall(SYS_add_key, "user", "k", "v", 1, KEY_SPEC_SESSION_KEYRING));
    show("io_uring_setup", syscall(SYS_io_uring_setup, 8, nullptr));
    show("perf_event_open", syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0));
    show("userfaultfd", syscall(SYS_userfaultfd, 0));
    show("kexec_load", syscall(SYS_kexec_load, 0, 0, nullptr, 0));
    show("init_module", syscall(SYS_init_module, nullptr, 0, ""));
    show("open_by_handle_at", syscall(SYS_open_by_handle_at, 0, nullptr, 0));
    show("swapon", syscall(SYS_swapon, "/tmp/x", 0));
    show("reboot", syscall(SYS_reboot, 0, 0, 0, nullptr));
    show("settimeofday", syscall(SYS_settimeofday, nullptr, nullptr));
    show("iopl", syscall(SYS_iopl, 3));
    show("personality_no_aslr", personality(ADDR_NO_RANDOMIZE));
    show("personality_query", personality(0xffffffff));
    show("personality_read_implies_exec", personality(READ_IMPLIES_EXEC));
    // The kernel reads an unsigned int: these are ADDR_NO_RANDOMIZE and a query.
    show("personality_no_aslr_high", syscall(SYS_personality, (1ull << 32) | ADDR_NO_RANDOMIZE));
    show("personality_query_high", syscall(SYS_personality, ~0ull));
    {
        long rc = personality(PER_LINUX32);
        show("personality_linux32", rc);
        personality(PER_LINUX);
    }
    show("mbind", syscall(SYS_mbind, nullptr, 0, 0, nullptr, 0, 0));
    show("set_mempolicy", syscall(SYS_set_mempolicy, 0, nullptr, 0));
    show("migrate_pages", syscall(SYS_migrate_pages, 0, 0, nullptr, nullptr));
    show("move_pages", syscall(SYS_move_pages, 0, 0, nullptr, nullptr, nullptr, 0));
    show("process_madvise", syscall(SYS_process_madvise, -1, nullptr, 0, 0, 0));
    show("sethostname", sethostname("x", 1));
    {
        // Calls newer than the libseccomp Kiln builds with, by number.
        unsigned long long size = 0;
        show("lsm_list_modules", syscall(461, nullptr, &size, 0));
        show("open_tree_attr", syscall(467, AT_FDCWD, "/tmp", 1, nullptr, 0));
    }
    show("socket_netlink", socket(AF_NETLINK, SOCK_RAW, 0));
    show("socket_packet", socket(AF_PACKET, SOCK_RAW, 0));
    {
        long rc = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
        if (rc == 0) _exit(0);  // the impossible child
        show("clone_newuser", rc);
        // The kernel reads the low 32 bits of clone's flags.
        rc = syscall(SYS_clone, (1ull << 32) | CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
        if (rc == 0) _exit(0);
        show("clone_newuser_high", rc);
    }
    show("ioctl_tiocsti_high", syscall(SYS_ioctl, 0, (1ull << 32) | TIOCSTI, "x"));
    show("setuid0", setuid(0));
    show("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    return 0;
}

int mounts() {
    FILE* f = fopen("/proc/self/mounts", "r");
    if (!f) return 1;
    char line[1024];
    while (fgets(line, sizeof line, f)) fputs(line, stdout);
    fclose(f);
    return 0;
}

int exists(int argc, char** argv) {
    for (int i = 2; i < argc; ++i) {
        struct stat st;
        printf("exists %s %d\n", argv[i], lstat(argv[i], &st) == 0 ? 1 : 0);
    }
    return 0;
}

// "read PATH ERRNO BYTES" for each path: 0 and the bytes read when readable.
int read_paths(int argc, char** argv) {
    for (int i = 2; i < argc; ++i) {
        char buf[4096];
        int fd = open(argv[i], O_RDONLY);
        int e = fd < 0 ? errno : 0;
        ssize_t n = 0;
        if (fd >= 0) {
            n = read(fd, buf, sizeof buf);
            if (n < 0) e = errno;
            close(fd);
        }
        printf("read %s %d %zd\n", argv[i], e, n < 0 ? 0 : n);
    }
    return 0;
}

int write_path(const char* path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = fd < 0 ? errno : 0;
    if (fd >= 0) {
        if (write(fd, "x\n", 2) != 2) e = errno;
        close(fd);
    }
    printf("write %s %d\n", path, e);
    return 0;
}

int connect_tcp(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        printf("connect %d\n", errno);
        return 0;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    printf("connect %d\n", err_of(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a)));
    return 0;
}

int connect_abstract(const char* name) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        printf("connect %d\n", errno);
        return 0;
    }
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    size_t n = strlen(name);
    memcpy(a.sun_path + 1, name, n);
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
    printf("connect %d\n", err_of(connect(fd, reinterpret_cast<sockaddr*>(&a), len)));
    return 0;
}

// The most permissive answer the kernel gives to socket() (or socketpair())
// of this family over the usual types: 0 if any type made a socket, else
// the first error other than EPERM, else EPERM. Only a family refused
// whatever the type, as the seccomp filter refuses it, answers EPERM.
int family_answer(long nr, unsigned long long family) {
    int answer = EPERM;
    for (int type : {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW}) {
        int sv[2] = {-1, -1};
        long rc = nr == SYS_socketpair ? syscall(nr, family, type, 0, sv) : syscall(nr, family, type, 0);
        if (rc >= 0) {
            close(nr == SYS_socketpair ? sv[0] : static_cast<int>(rc));
            if (nr == SYS_socketpair) close(sv[1]);
            return 0;
        }
        if (errno != EPERM && answer == EPERM) answer = errno;
    }
    return answer;
}

int families() {
    unsigned long long list[80];
    int n = 0;
    for (unsigned long long f = 0; f < 64; ++f) list[n++] = f;
    for (unsigned long long f : {255ull, 0x7fffull, 0x7fffffffull, 0x80000000ull, 0xffffffffull}) list[n++] = f;
    for (int i = 0; i < n; ++i) {
        // The kernel reads the family as an int: only the low 32 bits count.
        const unsigned long long high = list[i] | (1ull << 32);
        for (long nr : {static_cast<long>(SYS_socket), static_cast<long>(SYS_socketpair)}) {
            const char* call = nr == SYS_socket ? "socket" : "socketpair";
            printf("%s %llu plain %d\n", call, list[i], family_answer(nr, list[i]));
            printf("%s %llu high %d\n", call, list[i], family_answer(nr, high));
        }
    }
    return 0;
}

int cat() {
    char buf[65536];
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0)
        if (write(1, buf, static_cast<size_t>(n)) != n) return 1;
    return 0;
}

int forkbomb() {
    for (;;) {
        fork();
    }
}

int memhog(long mb) {
    long touched = 0;
    for (long i = 0; i < mb; ++i) {
        char* p = static_cast<char*>(malloc(1 << 20));
        if (!p) {
            printf("memhog ENOMEM after %ld MB\n", touched);
            return 3;
        }
        memset(p, 1, 1 << 20);
        ++touched;
    }
    printf("memhog done %ld MB\n", touched);
    return 0;
}

int spin() {
    volatile unsigned long x = 0;
    for (;;) x = x + 1;
}

// Double fork + setsid + SIGTERM ignored: a daemon that outlives its parent.
int daemon_(const char* marker) {
    pid_t p = fork();
    if (p != 0) return 0;
    setsid();
    if (fork() != 0) _exit(0);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    prctl(PR_SET_NAME, marker, 0, 0, 0);
    for (;;) pause();
}

int flood(long bytes) {
    static char buf[65536];
    memset(buf, 'A', sizeof buf);
    while (bytes > 0) {
        long n = bytes < static_cast<long>(sizeof buf) ? bytes : static_cast<long>(sizeof buf);
        if (write(1, buf, static_cast<size_t>(n)) != n) return 1;
        bytes -= n;
    }
    return 0;
}

int filltmp() {
    int fd = open("/tmp/fill", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        printf("filltmp open %d\n", errno);
        return 1;
    }
    static char buf[1 << 16];
    long total = 0;
    for (;;) {
        ssize_t n = write(fd, buf, sizeof buf);
        if (n <= 0) {
            printf("filltmp %d after %ld\n", n < 0 ? errno : 0, total);
            return 0;
        }
        total += n;
    }
}

// Per-user budgets (sandbox/ucounts.hpp): how much of each the kernel lets
// this jail take. Everything stays held until the process exits, so a
// second jail and the host can be tried while this one holds its all.
int take_inotify(int& last_fd) {
    int n = 0;
    for (; n < 100000; ++n) {
        int fd = inotify_init1(IN_CLOEXEC);
        if (fd < 0) break;
        last_fd = fd;
    }
    printf("inotify_instances %d %d\n", n, errno);
    return n;
}

void take_inotify_watches(int ifd) {
    int n = 0, err = 0;
    char path[64];
    for (; ifd >= 0 && n < 300000; ++n) {
        snprintf(path, sizeof path, "/tmp/w%d", n);
        int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0) { err = errno; break; }
        close(fd);
        if (inotify_add_watch(ifd, path, IN_MODIFY) < 0) { err = errno; break; }
    }
    printf("inotify_watches %d %d\n", n, err);
}

void take_sigpending() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    int n = 0;
    union sigval v {};
    for (; n < 1000000; ++n)
        if (sigqueue(getpid(), SIGRTMIN, v) != 0) break;
    printf("sigpending %d %d\n", n, errno);
}

void take_mqueue() {
    int n = 0;
    char name[32];
    mq_attr attr {};
    attr.mq_maxmsg = 10;
    attr.mq_msgsize = 1024;
    for (; n < 1000; ++n) {
        snprintf(name, sizeof name, "/kiln-probe-%d", n);
        if (mq_open(name, O_CREAT | O_RDWR | O_CLOEXEC, 0600, &attr) == (mqd_t)-1) break;
    }
    printf("mqueue %d %d\n", n, errno);
}

int budgets(int hold_seconds) {
    int ifd = -1;
    take_inotify(ifd);
    take_inotify_watches(ifd);
    take_sigpending();
    take_mqueue();
    printf("holding\n");
    fflush(stdout);
    if (hold_seconds > 0) sleep(static_cast<unsigned>(hold_seconds));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: probe report|syscalls|mounts|exists|read|write|connect-tcp|connect-abstract|socket|families|fork|cat|"
                        "forkbomb|memhog|spin|sleep|daemon|flood|filltmp|budgets\n");
        return 2;
    }
    setvbuf(stdout, nullptr, _IOLBF, 0);
    const char* cmd = argv[1];
    const char* arg = argc > 2 ? argv[2] : "";
    if (!strcmp(cmd, "report")) return report();
    if (!strcmp(cmd, "syscalls")) return syscalls();
    if (!strcmp(cmd, "mounts")) return mounts();
    if (!strcmp(cmd, "exists")) return exists(argc, argv);
    if (!strcmp(cmd, "read")) return read_paths(argc, argv);
    if (!strcmp(cmd, "write")) return write_path(arg);
    if (!strcmp(cmd, "connect-tcp")) return connect_tcp(atoi(arg));
    if (!strcmp(cmd, "connect-abstract")) return connect_abstract(arg);
    if (!strcmp(cmd, "families")) return families();
    if (!strcmp(cmd, "socket")) return printf("socket %d\n", err_of(socket(AF_INET, SOCK_STREAM, 0))) < 0;
    if (!strcmp(cmd, "fork")) {
        pid_t p = fork();
        if (p == 0) _exit(0);
        if (p > 0) waitpid(p, nullptr, 0);
        printf("fork %d\n", p < 0 ? errno : 0);
        return 0;
    }
    if (!strcmp(cmd, "cat")) return cat();
    if (!strcmp(cmd, "forkbomb")) return forkbomb();
    if (!strcmp(cmd, "memhog")) return memhog(atol(arg));
    if (!strcmp(cmd, "spin")) return spin();
    if (!strcmp(cmd, "sleep")) return sleep(static_cast<unsigned>(atoi(arg))) == 0 ? 0 : 1;
    if (!strcmp(cmd, "daemon")) return daemon_(arg);
    if (!strcmp(cmd, "flood")) return flood(atol(arg));
    if (!strcmp(cmd, "filltmp")) return filltmp();
    if (!strcmp(cmd, "budgets")) return budgets(atoi(arg));
    fprintf(stderr, "probe: unknown command %s\n", cmd);
    return 2;
}
