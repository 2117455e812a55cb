#include "sandbox/net.hpp"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace kiln::sandbox::net {

bool enter(ChildError& e) noexcept {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(e, "socket", "AF_INET for loopback");
    ifreq req{};
    req.ifr_name[0] = 'l';
    req.ifr_name[1] = 'o';
    bool ok = ::ioctl(fd, SIOCGIFFLAGS, &req) == 0;
    if (ok) {
        req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP | IFF_RUNNING);
        ok = ::ioctl(fd, SIOCSIFFLAGS, &req) == 0;
    }
    if (!ok) fail(e, "ioctl SIOCSIFFLAGS", "lo up");
    ::close(fd);
    return ok;
}

}  // namespace kiln::sandbox::net
