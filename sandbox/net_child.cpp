// The child half of the jail's loopback (net.hpp): it runs in the jail's setup process
// between clone() and execve(), where it may not allocate or take locks
// (child.hpp). The child-no-alloc test checks this file's object for it.
#include "sandbox/net.hpp"

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace kiln::sandbox::net {

bool enter(ChildError& e) noexcept {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(e, KILN_HINT_NETWORK, "socket", "AF_INET for loopback");
    ifreq req{};
    req.ifr_name[0] = 'l';
    req.ifr_name[1] = 'o';
    bool ok = ::ioctl(fd, SIOCGIFFLAGS, &req) == 0;
    if (ok) {
        req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP | IFF_RUNNING);
        ok = ::ioctl(fd, SIOCSIFFLAGS, &req) == 0;
    }
    if (!ok) fail(e, KILN_HINT_NETWORK, "ioctl SIOCSIFFLAGS", "lo up");
    ::close(fd);
    return ok;
}

bool make_namespace(ChildError& e) noexcept {
    return ::unshare(CLONE_NEWNET) == 0 || fail(e, KILN_HINT_NAMESPACE, "unshare", "CLONE_NEWNET");
}

bool name_host(ChildError& e) noexcept {
    return ::sethostname("kiln", 4) == 0 || fail(e, KILN_HINT_PROCESS, "sethostname", "kiln");
}

}  // namespace kiln::sandbox::net
