// The child half of the capability drop (caps.hpp): it runs in the jail's setup process
// between clone() and execve(), where it may not allocate or take locks
// (child.hpp). The child-no-alloc test checks this file's object for it.
#include "sandbox/caps.hpp"

#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace kiln::sandbox::caps {

bool drop_all(const Plan& plan, ChildError& e) noexcept {
    // The bounding set and securebits need CAP_SETPCAP, so they go first,
    // while the setup process still holds its namespace capabilities.
    for (int cap = 0; cap <= plan.last_cap; ++cap) {
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return fail(e, KILN_HINT_CAPS, "prctl PR_CAPBSET_DROP");
    }
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return fail(e, KILN_HINT_CAPS, "prctl PR_CAP_AMBIENT_CLEAR_ALL");
    // No setuid fixups, no root magic, no keep-caps, no ambient raise, all locked.
    unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                         SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                         SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    if (::prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) return fail(e, KILN_HINT_CAPS, "prctl PR_SET_SECUREBITS");
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capset, &header, data) != 0) return fail(e, KILN_HINT_CAPS, "capset", "[]");
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail(e, KILN_HINT_CAPS, "prctl PR_SET_NO_NEW_PRIVS");
    return true;
}

}  // namespace kiln::sandbox::caps
