// The child half of the per-user namespace budgets (ucounts.hpp): it runs in the jail's setup process
// between clone() and execve(), where it may not allocate or take locks
// (child.hpp). The child-no-alloc test checks this file's object for it.
#include "sandbox/ucounts.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace kiln::sandbox::ucounts {

bool open_files(const Plan& plan, Files& fds, ChildError& e) noexcept {
    fds.fill(-1);
    for (std::size_t i = 0; i < plan.count; ++i) {
        const Sysctl& s = plan.sysctls[i];
        fds[i] = ::open(s.path.c_str(), O_WRONLY | O_CLOEXEC);
        // A kernel without this counter has nothing to bound.
        if (fds[i] < 0 && errno != ENOENT) return fail(e, KILN_HINT_BUDGETS, "open", s.path.c_str());
    }
    return true;
}

bool enter(const Plan& plan, Files& fds, ChildError& e) noexcept {
    for (std::size_t i = 0; i < plan.count; ++i) {
        if (fds[i] < 0) continue;
        const Sysctl& s = plan.sysctls[i];
        bool ok = write_all(fds[i], s.value.data(), s.value.size());
        ::close(fds[i]);
        fds[i] = -1;
        if (!ok) return fail(e, KILN_HINT_BUDGETS, "write", s.path.c_str());
    }
    return true;
}

}  // namespace kiln::sandbox::ucounts
