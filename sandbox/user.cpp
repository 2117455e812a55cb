#include "sandbox/user.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/unique_fd.hpp"

namespace kiln::sandbox::user {
namespace {

Status write_proc_file(pid_t pid, const char* name, const std::string& text) {
    std::string path = "/proc/" + std::to_string(pid) + "/" + name;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return sys_error("open " + path);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return sys_error("write " + path, "'" + text + "'");
    return {};
}

}  // namespace

Plan prepare(unsigned jail_uid, unsigned jail_gid, unsigned host_uid, unsigned host_gid, bool rootless) {
    Plan p;
    p.uid = jail_uid;
    p.gid = jail_gid;
    p.uid_map = std::to_string(jail_uid) + " " + std::to_string(host_uid) + " 1\n";
    p.gid_map = std::to_string(jail_gid) + " " + std::to_string(host_gid) + " 1\n";
    p.deny_setgroups = rootless;
    return p;
}

Status write_maps(pid_t child, const Plan& plan) {
    if (plan.deny_setgroups) {
        if (Status st = write_proc_file(child, "setgroups", "deny"); !st) return st;
    }
    if (Status st = write_proc_file(child, "uid_map", plan.uid_map); !st) return st;
    return write_proc_file(child, "gid_map", plan.gid_map);
}

Status own_namespaces_for_rootless_server() {
    const uid_t uid = ::geteuid();
    const gid_t gid = ::getegid();
    if (uid == 0) return make_error("rootless namespaces", "the server is root: it needs none", EINVAL);
    // unshare(CLONE_NEWUSER) is refused to a process with several threads.
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        return sys_error("unshare", "CLONE_NEWUSER|CLONE_NEWNS (unprivileged user namespaces disabled, or the server "
                                    "already started a thread)");
    pid_t self = ::getpid();
    if (Status st = write_proc_file(self, "setgroups", "deny"); !st) return st;
    if (Status st = write_proc_file(self, "uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1\n"); !st) return st;
    if (Status st = write_proc_file(self, "gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1\n"); !st) return st;
    // Nothing mounted here may reach the host's namespaces, nor the other way.
    if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return sys_error("mount", "/ rprivate");
    return {};
}

}  // namespace kiln::sandbox::user
