/* The contract between the jail's setup (sandbox/jail.cpp, C++) and
 * kiln-init (sandbox/kiln_init.c, C): the descriptors kiln-init finds open
 * when the setup process execs it, and the error record both send.
 *
 * kiln-init's argv: kiln-init CWD PATH_DIRS PROFILE -- PROGRAM ARGS...
 * (PATH_DIRS: ':'-separated directories to search for a PROGRAM without a
 * slash; PROFILE: "default" or "strict", the program's seccomp profile);
 * its environment is the program's. */
#ifndef KILN_SANDBOX_INIT_PROTOCOL_H
#define KILN_SANDBOX_INIT_PROTOCOL_H

#include <signal.h>

enum kiln_init_fd {
    KILN_FD_STDIN = 0,
    KILN_FD_STDOUT = 1,
    KILN_FD_STDERR = 2,
    KILN_FD_SYNC = 3,        /* parent -> setup: one byte once id maps are written */
    KILN_FD_SETUP_ERROR = 4, /* setup -> parent: an error record; EOF when kiln-init starts */
    KILN_FD_EXEC_ERROR = 5,  /* kiln-init -> parent: an error record; EOF when the program starts */
    KILN_FD_STATUS = 6,      /* kiln-init -> parent: the program's wait status (an int) */
    KILN_FD_LANDLOCK = 7,    /* the Landlock ruleset to restrict to, or closed */
    KILN_FD_BASE_BPF = 8,    /* seccomp filter for all (sealed memfd, raw sock_filter array) */
    KILN_FD_EXTRA_BPF = 9,   /* stacked on it: no new process; kiln-init's, and strict programs' */
    KILN_FD_INIT_EXE = 10,   /* kiln-init itself, for execveat (setup only) */
    KILN_FD_COUNT = 11,
};

/* Sent by the server to kiln-init at the deadline or on cancellation, once
 * the program runs: kiln-init kills and reaps every process of the jail,
 * reports the program's status and exits (SIGKILL follows if it does not). */
#define KILN_SIGNAL_END SIGUSR1

/* What kind of step failed, so that the server can tell the operator what
 * to check next (sandbox/hints.cpp maps it and errno to advice): the child
 * cannot format text of its own, it must not allocate. */
enum kiln_hint {
    KILN_HINT_NONE = 0,
    KILN_HINT_CGROUP = 1,      /* joining the run's cgroup */
    KILN_HINT_NAMESPACE = 2,   /* unshare of a namespace */
    KILN_HINT_IDS = 3,         /* setgroups/setresuid/setresgid in the jail */
    KILN_HINT_BIND_SOURCE = 4, /* opening a bind mount's host source */
    KILN_HINT_MOUNT = 5,       /* building the jail's tree, pivot_root */
    KILN_HINT_BUDGETS = 6,     /* the per-user namespace budgets (/proc/sys/user) */
    KILN_HINT_PROCESS = 7,     /* prctl, hostname, descriptors of the setup */
    KILN_HINT_NETWORK = 8,     /* the jail's loopback */
    KILN_HINT_RLIMIT = 9,      /* setrlimit */
    KILN_HINT_CAPS = 10,       /* dropping capabilities, no_new_privs */
    KILN_HINT_LANDLOCK = 11,   /* building or entering the Landlock ruleset */
    KILN_HINT_SECCOMP = 12,    /* loading the seccomp filters */
    KILN_HINT_CWD = 13,        /* the program's working directory */
    KILN_HINT_EXEC = 14,       /* exec of kiln-init or of the program; the last */
};

/* Sent when a step fails: errno, the kind of step (enum kiln_hint) and
 * "step argument" (NUL-terminated). 244 bytes, one pipe write (atomic). */
struct kiln_child_error {
    int err;
    int hint;
    char step[236];
};

#ifdef __cplusplus
static_assert(sizeof(struct kiln_child_error) == 244, "the error record's layout is shared with kiln-init");
#else
_Static_assert(sizeof(struct kiln_child_error) == 244, "the error record's layout is shared with the server");
#endif

#endif
