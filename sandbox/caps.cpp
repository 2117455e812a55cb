#include "sandbox/caps.hpp"

#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>

namespace kiln::sandbox::caps {

Plan prepare() {
    Plan p;
    std::ifstream in("/proc/sys/kernel/cap_last_cap");
    int n = 0;
    if (in >> n && n > 0 && n < 64) p.last_cap = n;
    return p;
}

}  // namespace kiln::sandbox::caps
