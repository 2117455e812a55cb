#include "sandbox/ucounts.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <fstream>

namespace kiln::sandbox::ucounts {
namespace {

constexpr const char* kUserSysctls = "/proc/sys/user/";

// The kernel starts every user namespace's maxima at INT_MAX, "no bound of
// its own": a rootless server reads that in the namespace it makes itself,
// and so does any server in a container with a user namespace (a pod with
// hostUsers: false). The bound that holds is then an ancestor's, which
// cannot be read from inside, and a share of INT_MAX let one jail take the
// whole of it. The kernel's default (`fallback`) is the base instead.
constexpr std::uint64_t kNoBoundInThisNamespace = INT_MAX;

std::uint64_t read_host_value(const std::string& path, std::uint64_t fallback) {
    std::ifstream in(path);
    std::uint64_t v = 0;
    return (in >> v) && v < kNoBoundInThisNamespace ? v : fallback;
}

rlim_t own_rlimit(int resource, rlim_t fallback) {
    rlimit r{};
    if (::getrlimit(resource, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return fallback;
    return r.rlim_cur;
}

void add(Plan& p, const char* name, std::uint64_t value) {
    p.sysctls[p.count++] = Sysctl{std::string(kUserSysctls) + name, std::to_string(value)};
}

}  // namespace

std::uint64_t share(std::uint64_t host, unsigned max_runs, std::uint64_t floor) {
    std::uint64_t runs = std::max(1u, max_runs);
    std::uint64_t s = host / (2 * runs);
    return std::min(host, std::max(s, floor));
}

Plan prepare(unsigned max_runs) {
    Plan p;
    // A program may watch files (a test runner's watch mode, a dev server);
    // it never needs more than a handful of instances.
    add(p, "max_inotify_instances", share(read_host_value("/proc/sys/user/max_inotify_instances", 128), max_runs, 1));
    add(p, "max_inotify_watches", share(read_host_value("/proc/sys/user/max_inotify_watches", 8192), max_runs, 16));
    // Seccomp denies fanotify_init and every way to make a namespace; these
    // zeros hold even if a profile ever lets one through.
    for (const char* none : {"max_fanotify_groups", "max_fanotify_marks", "max_user_namespaces", "max_mnt_namespaces",
                             "max_pid_namespaces", "max_net_namespaces", "max_ipc_namespaces", "max_uts_namespaces",
                             "max_cgroup_namespaces", "max_time_namespaces"})
        add(p, none, 0);
    p.sigpending = share(own_rlimit(RLIMIT_SIGPENDING, 4096), max_runs, 16);
    p.msgqueue_bytes = share(own_rlimit(RLIMIT_MSGQUEUE, 819200), max_runs, 8192);
    p.memlock_bytes = share(own_rlimit(RLIMIT_MEMLOCK, 8u << 20), max_runs, 64u << 10);
    return p;
}

}  // namespace kiln::sandbox::ucounts
