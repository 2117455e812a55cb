#include "sandbox/net.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
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

namespace {

UniqueFd open_thread_netns() { return UniqueFd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)); }

// Runs on a thread of its own that ends right after: unshare() moves only
// that thread, and the descriptor keeps the namespace alive.
Result<UniqueFd> make_on_this_thread() {
    if (::unshare(CLONE_NEWNET) != 0) return sys_error("unshare", "CLONE_NEWNET (a shared network namespace needs root)");
    UniqueFd fd = open_thread_netns();
    if (!fd) return sys_error("open", "/proc/thread-self/ns/net");
    ChildError e;
    if (!enter(e)) return make_error(e.step, "bringing up loopback in a new network namespace", e.err);
    return fd;
}

}  // namespace

Result<std::unique_ptr<Namespace>> Namespace::create() { return start().get(); }

std::future<Result<std::unique_ptr<Namespace>>> Namespace::start() {
    // std::launch::async: a new thread per call, so the unshare() never
    // touches a pooled thread that something else would run on later.
    return std::async(std::launch::async, []() -> Result<std::unique_ptr<Namespace>> {
        auto made = make_on_this_thread();
        if (!made) return made.error();
        return std::unique_ptr<Namespace>(new Namespace(std::move(*made)));
    });
}

Status ThreadIn::join(int target_fd) {
    home_ = open_thread_netns();
    if (!home_) return sys_error("open", "/proc/thread-self/ns/net");
    if (::setns(target_fd, CLONE_NEWNET) != 0) {
        home_.reset();
        return sys_error("setns", "the session's network namespace");
    }
    return {};
}

Status ThreadIn::leave() {
    if (!home_) return {};
    UniqueFd home = std::move(home_);
    if (::setns(home.get(), CLONE_NEWNET) != 0) return sys_error("setns", "back to the server's network namespace");
    return {};
}

}  // namespace kiln::sandbox::net
