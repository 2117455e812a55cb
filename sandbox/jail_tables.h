/* The tables the jail is built from, shared by the jail's setup
 * (sandbox/mount.cpp, rlimits.cpp, landlock.cpp, C++) and the benchmark's
 * reference jail (bench/sandbox/jail_floor.c, C), so that the floor does the
 * kernel work Kiln's jail does and cannot drift from it. What the jail
 * computes per run (the passwd ids, the rlimits that follow the run's
 * limits, the Landlock rights of the kernel's ABI) is here as a format or a
 * function of its inputs. */
#ifndef KILN_SANDBOX_JAIL_TABLES_H
#define KILN_SANDBOX_JAIL_TABLES_H

/* Host paths mirrored at the same place in a jail without its own rootfs: a
 * symlink stays a symlink (merged /usr), anything else is bound read-only;
 * a missing one is skipped. */
static const char *const kiln_system_paths[] = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};

/* The synthetic /etc: four files written into the root tmpfs, and the host
 * files programs need mirrored. Nothing else of the host's /etc (shadow,
 * the server's configuration, credentials) is visible. The passwd and group
 * formats take the jail's uid and gid (unsigned). */
#define KILN_ETC_PASSWD_FORMAT "root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:%u:%u:Kiln sandbox:/tmp:/bin/sh\n"
#define KILN_ETC_GROUP_FORMAT "root:x:0:\nsandbox:x:%u:\n"
#define KILN_ETC_HOSTS "127.0.0.1 localhost kiln\n::1 localhost\n"
#define KILN_ETC_NSSWITCH "passwd: files\ngroup: files\nhosts: files\n"
/* /etc/matplotlibrc: Debian's matplotlib reads its defaults only there and
 * will not import without it; /etc/fonts: without it fontconfig (fc-list,
 * which matplotlib runs) prints an error into every plotting program's stderr. */
static const char *const kiln_etc_mirrored[] = {"/etc/ld.so.cache", "/etc/localtime", "/etc/ssl",
                                                "/etc/ca-certificates", "/etc/alternatives", "/etc/matplotlibrc", "/etc/fonts"};

/* /dev: the host's harmless devices bound onto empty files, and the links
 * into the jail's own /proc. */
static const char *const kiln_dev_bound[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"};
struct kiln_link {
    const char *path, *target;
};
static const struct kiln_link kiln_dev_links[] = {{"/dev/fd", "/proc/self/fd"},
                                                  {"/dev/stdin", "/proc/self/fd/0"},
                                                  {"/dev/stdout", "/proc/self/fd/1"},
                                                  {"/dev/stderr", "/proc/self/fd/2"}};

/* mount_setattr(2) flags (<linux/mount.h> clashes with glibc 2.36's
 * <sys/mount.h>), and what each kind of bind carries. A device bind keeps
 * the host devtmpfs's flags: nodev would make /dev/null unopenable. */
#define KILN_MOUNT_ATTR_RDONLY 0x1ull
#define KILN_MOUNT_ATTR_NOSUID 0x2ull
#define KILN_MOUNT_ATTR_NODEV 0x4ull
#define KILN_MOUNT_ATTR_NOEXEC 0x8ull
#define KILN_ATTR_SYSTEM (KILN_MOUNT_ATTR_RDONLY | KILN_MOUNT_ATTR_NOSUID | KILN_MOUNT_ATTR_NODEV)
#define KILN_ATTR_DEVICE (KILN_MOUNT_ATTR_NOSUID | KILN_MOUNT_ATTR_NOEXEC)
#define KILN_ATTR_WRITABLE (KILN_MOUNT_ATTR_NOSUID | KILN_MOUNT_ATTR_NODEV)

/* rlimits, soft = hard, a backstop under the cgroup limits. NPROC counts
 * per user namespace, so per jail: kiln-init and the program's processes.
 * CPU seconds never exceed what the wall-clock limit allows at the quota.
 * Files larger than the jail's writable space are never legitimate. */
#define KILN_RLIMIT_CORE_VALUE 0ull
#define KILN_RLIMIT_NOFILE_VALUE 1024ull
#define KILN_RLIMIT_STACK_VALUE (8ull << 20)
#define KILN_RLIMIT_FSIZE_AT_LEAST (256ull << 20)
static inline unsigned long long kiln_rlimit_fsize(unsigned long long tmp_size_bytes) {
    return tmp_size_bytes > KILN_RLIMIT_FSIZE_AT_LEAST ? tmp_size_bytes : KILN_RLIMIT_FSIZE_AT_LEAST;
}
static inline unsigned long long kiln_rlimit_nproc(unsigned pids) { return (unsigned long long)pids + 1; }
static inline unsigned long long kiln_rlimit_cpu(long long timeout_ms, double cpus) {
    return (unsigned long long)((double)(timeout_ms / 1000) * (cpus > 1.0 ? cpus : 1.0)) + 2;
}

/* A run's limits when it asks for none (sandbox/runtime.hpp Limits, which
 * rlimits.cpp checks against these). */
#define KILN_DEFAULT_MEMORY_BYTES (256ull << 20)
#define KILN_DEFAULT_CPUS 1.0
#define KILN_DEFAULT_PIDS 64u
#define KILN_DEFAULT_TIMEOUT_MS 30000ll
#define KILN_DEFAULT_TMP_SIZE_BYTES (64ull << 20)

/* Landlock access rights (Debian 12's headers stop at ABI 2; the later bits
 * are stable kernel interface). */
#define KILN_LANDLOCK_EXECUTE (1ull << 0)
#define KILN_LANDLOCK_WRITE_FILE (1ull << 1)
#define KILN_LANDLOCK_READ_FILE (1ull << 2)
#define KILN_LANDLOCK_READ_DIR (1ull << 3)
#define KILN_LANDLOCK_REMOVE_DIR (1ull << 4)
#define KILN_LANDLOCK_REMOVE_FILE (1ull << 5)
#define KILN_LANDLOCK_MAKE_CHAR (1ull << 6)
#define KILN_LANDLOCK_MAKE_DIR (1ull << 7)
#define KILN_LANDLOCK_MAKE_REG (1ull << 8)
#define KILN_LANDLOCK_MAKE_SOCK (1ull << 9)
#define KILN_LANDLOCK_MAKE_FIFO (1ull << 10)
#define KILN_LANDLOCK_MAKE_BLOCK (1ull << 11)
#define KILN_LANDLOCK_MAKE_SYM (1ull << 12)
#define KILN_LANDLOCK_REFER (1ull << 13)
#define KILN_LANDLOCK_TRUNCATE (1ull << 14)
#define KILN_LANDLOCK_IOCTL_DEV (1ull << 15)
#define KILN_LANDLOCK_SCOPE_ABSTRACT_UNIX (1ull << 0)
#define KILN_LANDLOCK_SCOPE_SIGNAL (1ull << 1)

/* Every filesystem right the kernel's ABI knows, all handled. */
static inline unsigned long long kiln_landlock_handled_fs(int abi) {
    unsigned long long all = KILN_LANDLOCK_EXECUTE | KILN_LANDLOCK_WRITE_FILE | KILN_LANDLOCK_READ_FILE |
                             KILN_LANDLOCK_READ_DIR | KILN_LANDLOCK_REMOVE_DIR | KILN_LANDLOCK_REMOVE_FILE |
                             KILN_LANDLOCK_MAKE_CHAR | KILN_LANDLOCK_MAKE_DIR | KILN_LANDLOCK_MAKE_REG |
                             KILN_LANDLOCK_MAKE_SOCK | KILN_LANDLOCK_MAKE_FIFO | KILN_LANDLOCK_MAKE_BLOCK |
                             KILN_LANDLOCK_MAKE_SYM;
    if (abi >= 2) all |= KILN_LANDLOCK_REFER;
    if (abi >= 3) all |= KILN_LANDLOCK_TRUNCATE;
    if (abi >= 5) all |= KILN_LANDLOCK_IOCTL_DEV;
    return all;
}
/* Abstract unix sockets and signals outside the jail's own domain (ABI 6). */
static inline unsigned long long kiln_landlock_scoped(int abi) {
    return abi >= 6 ? KILN_LANDLOCK_SCOPE_ABSTRACT_UNIX | KILN_LANDLOCK_SCOPE_SIGNAL : 0;
}
/* The rules' rights: read and execute everywhere in the jail ("/"); /dev's
 * files written to, without their (tty) ioctls; the writable directories
 * (/tmp, /workspace, writable binds) anything but device nodes. */
#define KILN_LANDLOCK_READ_ONLY (KILN_LANDLOCK_EXECUTE | KILN_LANDLOCK_READ_FILE | KILN_LANDLOCK_READ_DIR)
static inline unsigned long long kiln_landlock_dev(int abi) {
    return KILN_LANDLOCK_READ_ONLY | KILN_LANDLOCK_WRITE_FILE | (abi >= 3 ? KILN_LANDLOCK_TRUNCATE : 0);
}
static inline unsigned long long kiln_landlock_read_write(int abi) {
    return kiln_landlock_handled_fs(abi) & ~(KILN_LANDLOCK_MAKE_CHAR | KILN_LANDLOCK_MAKE_BLOCK | KILN_LANDLOCK_IOCTL_DEV);
}

#endif
