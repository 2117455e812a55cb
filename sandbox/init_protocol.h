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

/* Sent when a step fails: errno and "step argument" (NUL-terminated). */
struct kiln_child_error {
    int err;
    char step[240];
};

#endif
