#include "sandbox/rlimits.hpp"

#include "sandbox/jail_tables.h"

namespace kiln::sandbox::rlimits {

// The benchmark's reference jail (bench/sandbox/jail_floor.c) runs with the
// defaults as jail_tables.h spells them.
static_assert(Limits{}.memory_bytes == KILN_DEFAULT_MEMORY_BYTES && Limits{}.cpus == KILN_DEFAULT_CPUS &&
                  Limits{}.pids == KILN_DEFAULT_PIDS && Limits{}.timeout.count() == KILN_DEFAULT_TIMEOUT_MS &&
                  Limits{}.tmp_size_bytes == KILN_DEFAULT_TMP_SIZE_BYTES,
              "jail_tables.h's defaults are Limits'");

Plan prepare(const Limits& limits, bool memory_by_rlimit, const ucounts::Plan& shares) {
    Plan p;
    auto add = [&](int resource, rlim_t value, const char* name) { p.entries[p.count++] = Entry{resource, value, name}; };
    add(RLIMIT_CORE, KILN_RLIMIT_CORE_VALUE, "RLIMIT_CORE");
    add(RLIMIT_NOFILE, KILN_RLIMIT_NOFILE_VALUE, "RLIMIT_NOFILE");
    add(RLIMIT_FSIZE, kiln_rlimit_fsize(limits.tmp_size_bytes), "RLIMIT_FSIZE");
    add(RLIMIT_STACK, KILN_RLIMIT_STACK_VALUE, "RLIMIT_STACK");
    add(RLIMIT_NPROC, kiln_rlimit_nproc(limits.pids), "RLIMIT_NPROC");
    add(RLIMIT_CPU, kiln_rlimit_cpu(limits.timeout.count(), limits.cpus), "RLIMIT_CPU");
    // Charged per user namespace and to the server's uid above it: the
    // jail's share, so one jail cannot spend the host user's budget.
    if (shares.sigpending) add(RLIMIT_SIGPENDING, shares.sigpending, "RLIMIT_SIGPENDING");
    if (shares.msgqueue_bytes) add(RLIMIT_MSGQUEUE, shares.msgqueue_bytes, "RLIMIT_MSGQUEUE");
    if (shares.memlock_bytes) add(RLIMIT_MEMLOCK, shares.memlock_bytes, "RLIMIT_MEMLOCK");
    if (memory_by_rlimit) add(RLIMIT_AS, limits.memory_bytes, "RLIMIT_AS");
    return p;
}

}  // namespace kiln::sandbox::rlimits
