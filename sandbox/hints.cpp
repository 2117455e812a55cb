#include "sandbox/hints.hpp"

#include <cerrno>
#include <cstring>
#include <initializer_list>

namespace kiln::sandbox {
namespace {

constexpr const char* kUserNamespaces =
    "unprivileged user namespaces are off: check sysctl kernel.unprivileged_userns_clone=1 and "
    "user.max_user_namespaces > 0, or an AppArmor policy restricts them "
    "(kernel.apparmor_restrict_unprivileged_userns=0, or a profile for the server allowing userns); in a container, "
    "its seccomp profile must allow unshare and clone with namespace flags (Kiln's pod profile: "
    "deploy/seccomp/kiln.json, docs/deploy.md)";
constexpr const char* kNamespaceBudget =
    "a per-user namespace budget is exhausted: raise user.max_*_namespaces, or lower max_runs_total";
constexpr const char* kProcSysReadOnly =
    "/proc/sys is read-only, as a container's masked /proc makes it: give the container an unmasked /proc "
    "(Kubernetes procMount: Unmasked, Docker --security-opt systempaths=unconfined; docs/deploy.md)";
constexpr const char* kMountDenied =
    "the kernel refused a mount in the jail's namespace: a container or LSM policy (AppArmor, SELinux) may forbid "
    "mounts in user namespaces, or the source is a locked mount that may not be remounted";
constexpr const char* kMountNests =
    "a mount target or spec file lies below a file the spec binds or creates: give them paths that do not nest "
    "under files";
constexpr const char* kBindMissing = "the bind mount's source must exist on the host and be readable by the server";
constexpr const char* kLandlockOff =
    "Landlock is disabled: add landlock to the lsm= boot parameter (the kernel needs CONFIG_SECURITY_LANDLOCK)";
constexpr const char* kCgroupDenied =
    "the server may not move processes into its cgroups: delegate the subtree to the server's user "
    "(chown its tasks/cgroup.procs files, or systemd Delegate=yes)";
constexpr const char* kTooManyFiles = "the server is out of file descriptors: raise its RLIMIT_NOFILE (ulimit -n)";
constexpr const char* kRlimit =
    "a jail limit is above the server's own hard limit: raise the server's limit or lower the spec's";
constexpr const char* kCwd = "the working directory must exist inside the jail (under /workspace, /tmp or a mount)";
constexpr const char* kExec = "the program must exist inside the jail and be executable there";

bool is_any(int err, std::initializer_list<int> values) {
    for (int v : values)
        if (err == v) return true;
    return false;
}

}  // namespace

const char* hint_for(kiln_hint hint, int err) noexcept {
    if (is_any(err, {EMFILE, ENFILE})) return kTooManyFiles;
    switch (hint) {
        case KILN_HINT_NAMESPACE:
            if (err == ENOSPC) return kNamespaceBudget;
            return is_any(err, {EPERM, EACCES}) ? kUserNamespaces : nullptr;
        case KILN_HINT_CGROUP:
            return is_any(err, {EACCES, EPERM}) ? kCgroupDenied : nullptr;
        case KILN_HINT_BIND_SOURCE:
            return is_any(err, {ENOENT, ENOTDIR, EACCES, ELOOP}) ? kBindMissing : nullptr;
        case KILN_HINT_MOUNT:
            if (err == ENOTDIR) return kMountNests;
            return is_any(err, {EPERM, EACCES}) ? kMountDenied : nullptr;
        case KILN_HINT_BUDGETS:
            if (err == EROFS) return kProcSysReadOnly;
            return is_any(err, {EPERM, EACCES, EINVAL}) ? kNamespaceBudget : nullptr;
        case KILN_HINT_RLIMIT:
            return is_any(err, {EPERM, EINVAL}) ? kRlimit : nullptr;
        case KILN_HINT_LANDLOCK:
            return is_any(err, {ENOSYS, EOPNOTSUPP}) ? kLandlockOff : nullptr;
        case KILN_HINT_CWD:
            return is_any(err, {ENOENT, ENOTDIR, EACCES}) ? kCwd : nullptr;
        case KILN_HINT_EXEC:
            return is_any(err, {ENOENT, EACCES, ENOEXEC, ENOTDIR}) ? kExec : nullptr;
        case KILN_HINT_NONE:
        case KILN_HINT_IDS:
        case KILN_HINT_PROCESS:
        case KILN_HINT_NETWORK:
        case KILN_HINT_CAPS:
        case KILN_HINT_SECCOMP:
            return nullptr;
    }
    return nullptr;
}

Error child_failure(const ChildError& e) {
    std::string step(e.step, ::strnlen(e.step, sizeof e.step));
    // The record comes from another program (kiln-init): an unknown kind gets no advice.
    bool known = e.hint >= KILN_HINT_NONE && e.hint <= KILN_HINT_EXEC;
    const char* hint = known ? hint_for(static_cast<kiln_hint>(e.hint), e.err) : nullptr;
    return make_error(std::move(step), hint ? hint : "jail setup failed in the child", e.err);
}

}  // namespace kiln::sandbox
