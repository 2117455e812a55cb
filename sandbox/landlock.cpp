#include "sandbox/landlock.hpp"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace kiln::sandbox::landlock {
namespace {

// Debian 12's kernel headers stop at ABI 2; the bits of later ABIs are
// stable kernel interface and spelled out here.
constexpr std::uint64_t kExecute = 1ull << 0, kWriteFile = 1ull << 1, kReadFile = 1ull << 2,
                        kReadDir = 1ull << 3, kRemoveDir = 1ull << 4, kRemoveFile = 1ull << 5,
                        kMakeChar = 1ull << 6, kMakeDir = 1ull << 7, kMakeReg = 1ull << 8,
                        kMakeSock = 1ull << 9, kMakeFifo = 1ull << 10, kMakeBlock = 1ull << 11,
                        kMakeSym = 1ull << 12, kRefer = 1ull << 13, kTruncate = 1ull << 14,
                        kIoctlDev = 1ull << 15;
constexpr std::uint64_t kScopeAbstractUnix = 1ull << 0, kScopeSignal = 1ull << 1;

struct RulesetAttr {
    std::uint64_t handled_access_fs;
    std::uint64_t handled_access_net;
    std::uint64_t scoped;
};
struct PathBeneathAttr {
    std::uint64_t allowed_access;
    std::int32_t parent_fd;
} __attribute__((packed));

std::uint64_t handled_for_abi(int abi) {
    std::uint64_t all = kExecute | kWriteFile | kReadFile | kReadDir | kRemoveDir | kRemoveFile | kMakeChar |
                        kMakeDir | kMakeReg | kMakeSock | kMakeFifo | kMakeBlock | kMakeSym;
    if (abi >= 2) all |= kRefer;
    if (abi >= 3) all |= kTruncate;
    if (abi >= 5) all |= kIoctlDev;
    return all;
}

}  // namespace

int probe_abi() {
    long v = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return v > 0 ? static_cast<int>(v) : 0;
}

Plan prepare(int abi, const std::vector<std::string>& writable_dirs) {
    Plan p;
    if (abi <= 0) return p;
    p.abi = abi;
    p.handled_fs = handled_for_abi(abi);
    // Abstract unix sockets and signals outside the jail's own domain.
    if (abi >= 6) p.scoped = kScopeAbstractUnix | kScopeSignal;
    const std::uint64_t read_only = kExecute | kReadFile | kReadDir;
    const std::uint64_t read_write = p.handled_fs & ~(kMakeChar | kMakeBlock | kIoctlDev);
    p.rules.push_back({"/", read_only});
    // /dev/null and friends are written to; their ioctls (tty ones) are not needed.
    p.rules.push_back({"/dev", read_only | kWriteFile | (abi >= 3 ? kTruncate : 0)});
    for (const auto& dir : writable_dirs) p.rules.push_back({dir, read_write});
    return p;
}

bool build_ruleset(const Plan& plan, int& ruleset_fd, ChildError& e) noexcept {
    ruleset_fd = -1;
    if (plan.abi <= 0) return true;
    RulesetAttr attr{plan.handled_fs, 0, plan.scoped};
    std::size_t size = plan.abi >= 6 ? sizeof attr : 2 * sizeof(std::uint64_t);
    if (plan.abi < 4) size = sizeof(std::uint64_t);
    int ruleset = static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, size, 0));
    if (ruleset < 0) return fail(e, "landlock_create_ruleset");
    for (const Rule& r : plan.rules) {
        int fd = ::open(r.path.c_str(), O_PATH | O_CLOEXEC);
        if (fd < 0) {
            ::close(ruleset);
            return fail(e, "landlock open", r.path.c_str());
        }
        PathBeneathAttr pb{r.access & plan.handled_fs, fd};
        long rc = ::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
        ::close(fd);
        if (rc != 0) {
            ::close(ruleset);
            return fail(e, "landlock_add_rule", r.path.c_str());
        }
    }
    ruleset_fd = ruleset;
    return true;
}

}  // namespace kiln::sandbox::landlock
