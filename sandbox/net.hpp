// Network namespace (C003): the jail has its own network stack with only
// loopback. No route leads out; the host's loopback and its abstract unix
// sockets live in another namespace and are unreachable.
//
// By default each run gets a fresh namespace (CLONE_NEWNET), whose loopback
// the setup brings up (enter). A root server can instead make one Namespace
// ahead and let several runs join it (SandboxSpec::network_fd): the tools
// layer keeps one per session, so a session's runs share a loopback the way
// they share /workspace, and no namespace is built and torn down per run
// (about 1 ms of CPU each, in the kernel's setup_net and cleanup_net).
// Such a namespace belongs to the host's user namespace, so nothing in a
// jail holds capabilities over it: a jail cannot reconfigure it.
#pragma once

#include <future>
#include <memory>

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "sandbox/child.hpp"

namespace kiln::sandbox::net {

// In the setup child: a fresh network namespace (made by the child, not the
// clone, so that its set-up overlaps the parent writing the id maps) ...
bool make_namespace(ChildError& e) noexcept;
// ... with loopback up ...
bool enter(ChildError& e) noexcept;
// ... and the host name "kiln", in the jail's own uts namespace.
bool name_host(ChildError& e) noexcept;

class Namespace {
public:
    // A new namespace with loopback up. Needs CAP_SYS_ADMIN and CAP_NET_ADMIN
    // (a root server); the calling thread's own namespace does not change.
    static Result<std::unique_ptr<Namespace>> create();
    // The same, made on a thread of its own, on another CPU, while the
    // caller goes on: the kernel's setup_net takes about 0.6 ms, which a
    // one-shot `kiln run` overlaps with its flag parsing and cgroup setup.
    static std::future<Result<std::unique_ptr<Namespace>>> start();
    int fd() const { return fd_.get(); }

private:
    explicit Namespace(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;  // /proc/thread-self/ns/net of the thread that made it: keeps it alive
};

// Switches the calling thread into a namespace and back: the thread that
// clones a jail joins the namespace for the clone only, and the child
// inherits it. Only that thread is affected.
class ThreadIn {
public:
    ThreadIn() = default;
    ThreadIn(const ThreadIn&) = delete;
    ThreadIn& operator=(const ThreadIn&) = delete;
    ~ThreadIn() { (void)leave(); }
    Status join(int target_fd);
    // Back to the namespace the thread had before join(); also run by the destructor.
    Status leave();

private:
    UniqueFd home_;
};

}  // namespace kiln::sandbox::net
