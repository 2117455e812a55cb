/* kiln-probe: what `kiln selftest` runs inside a real jail to ask the kernel
 * what the jail really allows. It ships with kiln (installed next to
 * kiln-init) and is bound read-only into the selftest's jails at
 * /kiln/probe. A static C program, like kiln-init: it runs in any rootfs,
 * needs no library the jail might lack, and is not the server binary, which
 * a jail has no business reading.
 *
 * Every answer is one "key value" line on stdout; an errno is printed by
 * name ("EROFS", "ok" for success), so the report quotes the kernel verbatim.
 *
 *   kiln-probe facts PORT   identity, capabilities, filesystem, network, syscalls,
 *                           Landlock's own denials, what the jail can see, then a
 *                           fork loop up to the pids limit (last: it fills the jail)
 *   kiln-probe memhog MB    touches MB MiB in 1 MiB steps; "allocated N" if it survives
 *   kiln-probe sleep MS     sleeps MS milliseconds
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>

extern char** environ;

static const char* errno_name(int err) {
    switch (err) {
        case 0: return "ok";
        case EPERM: return "EPERM";
        case ENOENT: return "ENOENT";
        case EACCES: return "EACCES";
        case EROFS: return "EROFS";
        case EAGAIN: return "EAGAIN";
        case ENOMEM: return "ENOMEM";
        case ENOSYS: return "ENOSYS";
        case EINVAL: return "EINVAL";
        case ENOTTY: return "ENOTTY";
        case EXDEV: return "EXDEV";
        case ENETUNREACH: return "ENETUNREACH";
        case ECONNREFUSED: return "ECONNREFUSED";
        case EAFNOSUPPORT: return "EAFNOSUPPORT";
        case ETIMEDOUT: return "ETIMEDOUT";
        default: return "other";
    }
}

/* The answer of a call that returns -1 and sets errno, printed by name. */
static void answer(const char* key, long rc) {
    int err = rc < 0 ? errno : 0;
    if (strcmp(errno_name(err), "other") == 0) printf("%s errno%d\n", key, err);
    else printf("%s %s\n", key, errno_name(err));
}

static void status_lines(void) {
    static const char* const keys[] = {"CapEff:", "CapPrm:", "CapBnd:", "CapAmb:", "CapInh:",
                                       "NoNewPrivs:", "Seccomp:", "Seccomp_filters:"};
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    if (!f) {
        answer("status", -1);
        return;
    }
    while (fgets(line, sizeof line, f))
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; ++i)
            if (strncmp(line, keys[i], strlen(keys[i])) == 0) {
                char* v = line + strlen(keys[i]);
                while (*v == ' ' || *v == '\t') ++v;
                printf("%.*s %s", (int)strlen(keys[i]) - 1, keys[i], v);
            }
    fclose(f);
}

/* "inside outside count" of the first line of an id map: the host id the jail's id is. */
static void id_map(const char* key, const char* path) {
    FILE* f = fopen(path, "r");
    unsigned inside = 0, outside = 0, count = 0;
    if (f && fscanf(f, "%u %u %u", &inside, &outside, &count) == 3) printf("%s %u %u %u\n", key, inside, outside, count);
    else answer(key, -1);
    if (f) fclose(f);
}

/* "ns_<kind> <kind>:[inode]": the namespace this process is in, for the
 * selftest to compare with the server's own (CIS 5.16, 5.17, 5.21). */
static void namespace_link(const char* kind) {
    char path[64], target[128], key[32];
    snprintf(path, sizeof path, "/proc/self/ns/%s", kind);
    snprintf(key, sizeof key, "ns_%s", kind);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) {
        answer(key, -1);
        return;
    }
    target[n] = '\0';
    printf("%s %s\n", key, target);
}

static void identity(void) {
    printf("uid %u\ngid %u\n", (unsigned)getuid(), (unsigned)getgid());
    namespace_link("pid");
    namespace_link("ipc");
    namespace_link("uts");
    id_map("uid_map", "/proc/self/uid_map");
    id_map("gid_map", "/proc/self/gid_map");
    status_lines();
}

static long create_file(const char* path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    return fd;
}

static void filesystem(void) {
    answer("write_usr", create_file("/usr/kiln-selftest"));
    answer("write_root", create_file("/kiln-selftest"));
    answer("write_etc", create_file("/etc/kiln-selftest"));
    answer("write_tmp", create_file("/tmp/kiln-selftest"));
}

static long connect_host(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    long rc = connect(fd, (struct sockaddr*)&a, sizeof a);
    int err = errno;
    close(fd);
    errno = err;
    return rc;
}

/* The interfaces of the jail's network namespace, from /proc/net/dev. */
static void interfaces(void) {
    FILE* f = fopen("/proc/net/dev", "r");
    char line[512], names[256] = "";
    if (!f) {
        answer("interfaces", -1);
        return;
    }
    for (int n = 0; fgets(line, sizeof line, f); ++n) {
        char* colon = strchr(line, ':');
        if (n < 2 || !colon) continue;
        *colon = '\0';
        char* name = line;
        while (*name == ' ') ++name;
        if (strlen(names) + strlen(name) + 2 < sizeof names) {
            if (*names) strcat(names, ",");
            strcat(names, name);
        }
    }
    fclose(f);
    printf("interfaces %s\n", *names ? names : "none");
}

static void network(int port) {
    answer("connect_host", connect_host(port));
    interfaces();
}

static long close_after(long fd) {
    if (fd >= 0) close((int)fd);
    return fd;
}

static void syscalls(void) {
    answer("netlink", close_after(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)));
    answer("ptrace", ptrace(PTRACE_TRACEME, 0, NULL, NULL));
    answer("unshare", unshare(CLONE_NEWUSER));
}

/* What only Landlock refuses here: everywhere outside /tmp and /workspace a
 * read-only mount answers a write with EROFS before any LSM is asked, so the
 * ruleset shows itself where the mounts allow and the rules do not: making
 * a device node in the writable /tmp (the rules grant /tmp no MAKE_CHAR;
 * without Landlock the answer is EPERM, for want of CAP_MKNOD) and a device
 * ioctl (ABI 5 IOCTL_DEV; without Landlock /dev/null answers ENOTTY). */
static void landlock(void) {
    answer("mknod_tmp", mknod("/tmp/kiln-selftest-dev", S_IFCHR | 0600, makedev(1, 3)));
    unlink("/tmp/kiln-selftest-dev");
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    struct termios t;
    answer("ioctl_dev", fd < 0 ? -1 : ioctl(fd, TCGETS, &t));
    if (fd >= 0) close(fd);
}

static void visibility(void) {
    static const char* const paths[] = {"/home", "/root", "/var", "/run", "/sys", "/var/run/docker.sock", "/etc/shadow"};
    char seen[256] = "";
    struct stat st;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; ++i)
        if (lstat(paths[i], &st) == 0 && strlen(seen) + strlen(paths[i]) + 2 < sizeof seen) {
            if (*seen) strcat(seen, ",");
            strcat(seen, paths[i]);
        }
    printf("host_paths %s\n", *seen ? seen : "none");
    int fds = 0;
    DIR* d = opendir("/proc/self/fd");
    if (d) {
        for (struct dirent* e; (e = readdir(d));)
            if (e->d_name[0] != '.') ++fds;
        closedir(d);
    }
    printf("open_fds %d\n", fds - 1); /* less the directory's own */
    char names[512] = "";
    int count = 0;
    for (char** e = environ; *e; ++e, ++count) {
        size_t len = strcspn(*e, "=");
        if (strlen(names) + len + 2 < sizeof names) {
            if (*names) strcat(names, ",");
            strncat(names, *e, len);
        }
    }
    printf("environment %s\n", count ? names : "none");
}

/* Forks children that wait, until fork fails; prints how many and why, then
 * kills and reaps them. The jail's pids limit counts this process too. */
static void fork_to_limit(void) {
    enum { kMax = 100000 };
    static pid_t kids[kMax];
    int n = 0;
    long rc = 0;
    while (n < kMax) {
        pid_t p = fork();
        if (p == 0) {
            pause();
            _exit(0);
        }
        if (p < 0) {
            rc = -1;
            break;
        }
        kids[n++] = p;
    }
    int err = errno;
    for (int i = 0; i < n; ++i) kill(kids[i], SIGKILL);
    for (int i = 0; i < n; ++i) waitpid(kids[i], NULL, 0);
    errno = err;
    printf("forked %d\n", n);
    answer("fork_past_limit", rc);
}

static int facts(int port) {
    identity();
    filesystem();
    network(port);
    syscalls();
    landlock();
    visibility();
    fflush(stdout);
    fork_to_limit();
    return 0;
}

static int memhog(long mb) {
    char* blocks[65536];
    long n = 0;
    for (; n < mb && n < 65536; ++n) {
        blocks[n] = malloc(1 << 20);
        if (!blocks[n]) {
            printf("enomem_at %ld\n", n);
            return 3;
        }
        memset(blocks[n], 1, 1 << 20);
    }
    printf("allocated %ld\n", n);
    return 0;
}

static int sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    printf("slept %ld\n", ms);
    return 0;
}

int main(int argc, char** argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "facts") == 0) return facts(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "memhog") == 0) return memhog(atol(argv[2]));
    if (argc == 3 && strcmp(argv[1], "sleep") == 0) return sleep_ms(atol(argv[2]));
    fprintf(stderr, "usage: kiln-probe facts PORT | memhog MB | sleep MS\n");
    return 2;
}
