// The child half of the backstop limits (rlimits.hpp): it runs in the jail's setup process
// between clone() and execve(), where it may not allocate or take locks
// (child.hpp). The child-no-alloc test checks this file's object for it.
#include "sandbox/rlimits.hpp"

#include <sys/resource.h>

namespace kiln::sandbox::rlimits {

bool enter(const Plan& plan, ChildError& e) noexcept {
    for (std::size_t i = 0; i < plan.count; ++i) {
        const Entry& en = plan.entries[i];
        rlimit cur{};
        if (::getrlimit(en.resource, &cur) != 0) return fail(e, KILN_HINT_RLIMIT, "getrlimit", en.name);
        // Never raise a limit the server itself runs under.
        rlim_t v = en.value;
        if (cur.rlim_max != RLIM_INFINITY && cur.rlim_max < v) v = cur.rlim_max;
        rlimit lim{v, v};
        if (::setrlimit(en.resource, &lim) != 0) return fail(e, KILN_HINT_RLIMIT, "setrlimit", en.name);
    }
    return true;
}

}  // namespace kiln::sandbox::rlimits
