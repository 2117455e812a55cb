// Per-user kernel budgets (C007, T003): what one jail may take of the
// budgets the kernel keeps per user rather than per cgroup.
//
// The kernel charges inotify instances and watches, fanotify groups and
// marks, and namespaces to a "ucount": the (user namespace, uid) pair, and
// then to the namespace's owner in every ancestor namespace. A jail's user
// namespace is owned by the server's uid, so without a bound of its own a
// jail spends the server user's budget: with root's 128 inotify instances,
// one jail could take 123 and leave systemd, udev and the server 5. Each
// namespace has its own maximum (/proc/sys/user/max_* as seen from inside
// it) that the kernel checks at every level, so the setup writes a small
// share into its fresh namespace while it still holds CAP_SYS_RESOURCE there.
//
// The pending-signal, POSIX message-queue and locked-shm budgets are
// ucounts too, bounded per jail by its rlimits: the kernel checks the
// jail's own rlimit at the jail's level, and the server user's at the
// levels above. rlimits::prepare() applies those shares.
//
// Each share is the host's budget divided by twice the number of runs that
// may exist at once, so all jails together never take more than half.
#pragma once

#include <sys/resource.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>

#include "sandbox/child.hpp"

namespace kiln::sandbox::ucounts {

struct Sysctl {
    std::string path;   // /proc/sys/user/max_...
    std::string value;  // written as is
};

struct Plan {
    std::array<Sysctl, 12> sysctls;
    std::size_t count = 0;
    // Shares of the server user's ucount-backed rlimits; 0: leave as is.
    rlim_t sigpending = 0, msgqueue_bytes = 0, memlock_bytes = 0;
};

// The budget of one jail when `max_runs` jails may exist at once. Reads
// the host's limits as the server sees them.
Plan prepare(unsigned max_runs);

// One jail's share of a host budget: host / (2 * max_runs), at least `floor`
// and never more than the host's.
std::uint64_t share(std::uint64_t host, unsigned max_runs, std::uint64_t floor);

// In the setup, two steps. open_files() before the mounts, through the
// host's /proc (the files show the maxima of the opener's user namespace:
// this process is in the jail's since the clone, so they are the jail's).
// enter() after the mounts (making them takes mount namespaces of their
// own, open_tree clones, which a maximum of 0 would refuse) and before the
// capabilities are dropped: CAP_SYS_RESOURCE over the namespace is checked
// at each write.
using Files = std::array<int, std::tuple_size_v<decltype(Plan::sysctls)>>;
bool open_files(const Plan& plan, Files& fds, ChildError& e) noexcept;
bool enter(const Plan& plan, Files& fds, ChildError& e) noexcept;

}  // namespace kiln::sandbox::ucounts
