// The child half of the Landlock ruleset (landlock.hpp): it runs in the jail's setup process
// between clone() and execve(), where it may not allocate or take locks
// (child.hpp). The child-no-alloc test checks this file's object for it.
#include "sandbox/landlock.hpp"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace kiln::sandbox::landlock {

namespace {

struct RulesetAttr {
    std::uint64_t handled_access_fs;
    std::uint64_t handled_access_net;
    std::uint64_t scoped;
};
struct PathBeneathAttr {
    std::uint64_t allowed_access;
    std::int32_t parent_fd;
} __attribute__((packed));

}  // namespace

bool build_ruleset(const Plan& plan, int& ruleset_fd, ChildError& e) noexcept {
    ruleset_fd = -1;
    if (plan.abi <= 0) return true;
    RulesetAttr attr{plan.handled_fs, 0, plan.scoped};
    std::size_t size = plan.abi >= 6 ? sizeof attr : 2 * sizeof(std::uint64_t);
    if (plan.abi < 4) size = sizeof(std::uint64_t);
    int ruleset = static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, size, 0));
    if (ruleset < 0) return fail(e, KILN_HINT_LANDLOCK, "landlock_create_ruleset");
    for (const Rule& r : plan.rules) {
        int fd = ::open(r.path.c_str(), O_PATH | O_CLOEXEC);
        if (fd < 0) {
            ::close(ruleset);
            return fail(e, KILN_HINT_LANDLOCK, "landlock open", r.path.c_str());
        }
        PathBeneathAttr pb{r.access & plan.handled_fs, fd};
        long rc = ::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
        ::close(fd);
        if (rc != 0) {
            ::close(ruleset);
            return fail(e, KILN_HINT_LANDLOCK, "landlock_add_rule", r.path.c_str());
        }
    }
    ruleset_fd = ruleset;
    return true;
}

}  // namespace kiln::sandbox::landlock
