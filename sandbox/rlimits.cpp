#include "sandbox/rlimits.hpp"

#include <algorithm>

namespace kiln::sandbox::rlimits {

Plan prepare(const Limits& limits, bool memory_by_rlimit, const ucounts::Plan& shares) {
    Plan p;
    auto add = [&](int resource, rlim_t value, const char* name) { p.entries[p.count++] = Entry{resource, value, name}; };
    add(RLIMIT_CORE, 0, "RLIMIT_CORE");
    add(RLIMIT_NOFILE, 1024, "RLIMIT_NOFILE");
    // Files larger than the jail's writable space are never legitimate.
    add(RLIMIT_FSIZE, std::max<rlim_t>(limits.tmp_size_bytes, 256ull << 20), "RLIMIT_FSIZE");
    add(RLIMIT_STACK, 8ull << 20, "RLIMIT_STACK");
    // Counted per user namespace, so per jail: init + the program's processes.
    add(RLIMIT_NPROC, limits.pids + 1, "RLIMIT_NPROC");
    // CPU seconds: never above what the wall-clock limit allows at the quota.
    auto cpu_seconds = static_cast<rlim_t>(limits.timeout.count() / 1000 * std::max(1.0, limits.cpus)) + 2;
    add(RLIMIT_CPU, cpu_seconds, "RLIMIT_CPU");
    // Charged per user namespace and to the server's uid above it: the
    // jail's share, so one jail cannot spend the host user's budget.
    if (shares.sigpending) add(RLIMIT_SIGPENDING, shares.sigpending, "RLIMIT_SIGPENDING");
    if (shares.msgqueue_bytes) add(RLIMIT_MSGQUEUE, shares.msgqueue_bytes, "RLIMIT_MSGQUEUE");
    if (shares.memlock_bytes) add(RLIMIT_MEMLOCK, shares.memlock_bytes, "RLIMIT_MEMLOCK");
    if (memory_by_rlimit) add(RLIMIT_AS, limits.memory_bytes, "RLIMIT_AS");
    return p;
}

bool enter(const Plan& plan, ChildError& e) noexcept {
    for (std::size_t i = 0; i < plan.count; ++i) {
        const Entry& en = plan.entries[i];
        rlimit cur{};
        if (::getrlimit(en.resource, &cur) != 0) return fail(e, "getrlimit", en.name);
        // Never raise a limit the server itself runs under.
        rlim_t v = en.value;
        if (cur.rlim_max != RLIM_INFINITY && cur.rlim_max < v) v = cur.rlim_max;
        rlimit lim{v, v};
        if (::setrlimit(en.resource, &lim) != 0) return fail(e, "setrlimit", en.name);
    }
    return true;
}

}  // namespace kiln::sandbox::rlimits
