#include "sandbox/landlock.hpp"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/jail_tables.h"

namespace kiln::sandbox::landlock {

int probe_abi() {
    long v = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return v > 0 ? static_cast<int>(v) : 0;
}

Plan prepare(int abi, const std::vector<std::string>& writable_dirs) {
    Plan p;
    if (abi <= 0) return p;
    p.abi = abi;
    p.handled_fs = kiln_landlock_handled_fs(abi);
    p.scoped = kiln_landlock_scoped(abi);
    p.rules.push_back({"/", KILN_LANDLOCK_READ_ONLY});
    p.rules.push_back({"/dev", kiln_landlock_dev(abi)});
    for (const auto& dir : writable_dirs) p.rules.push_back({dir, kiln_landlock_read_write(abi)});
    return p;
}

}  // namespace kiln::sandbox::landlock
