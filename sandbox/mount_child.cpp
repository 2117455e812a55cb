// The child half of the jail's mount tree (mount.hpp): it runs in the jail's setup process
// between clone() and execve(), where it may not allocate or take locks
// (child.hpp). The child-no-alloc test checks this file's object for it.
#include "sandbox/mount.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "sandbox/jail_tables.h"

namespace kiln::sandbox::mount {
namespace {

// The new mount API (Linux 5.2 open_tree/move_mount, 5.12 mount_setattr).
// <linux/mount.h> clashes with glibc 2.36's <sys/mount.h>, hence the copies.
constexpr unsigned kOpenTreeClone = 1;
constexpr unsigned kAtRecursive = 0x8000;
constexpr unsigned kMoveMountFEmptyPath = 0x4;
constexpr unsigned long long kAttrRdonly = KILN_MOUNT_ATTR_RDONLY, kAttrNosuid = KILN_MOUNT_ATTR_NOSUID,
                             kAttrNodev = KILN_MOUNT_ATTR_NODEV, kAttrNoexec = KILN_MOUNT_ATTR_NOEXEC;
struct MountAttr {
    std::uint64_t attr_set, attr_clr, propagation, userns_fd;
};

bool set_attr(const char* path, unsigned long long attr, bool recursive, ChildError& e) noexcept {
    MountAttr ma{attr, 0, 0, 0};
    if (::syscall(SYS_mount_setattr, AT_FDCWD, path, recursive ? kAtRecursive : 0, &ma, sizeof ma) != 0)
        return fail(e, KILN_HINT_MOUNT, "mount_setattr", path);
    return true;
}

bool bind_from_fd(int fd, const Op& op, ChildError& e) noexcept {
    int tree = static_cast<int>(
        ::syscall(SYS_open_tree, fd, "", kOpenTreeClone | O_CLOEXEC | AT_EMPTY_PATH | kAtRecursive));
    if (tree < 0) return fail(e, KILN_HINT_MOUNT, "open_tree", op.source.c_str());
    long rc = ::syscall(SYS_move_mount, tree, "", AT_FDCWD, op.target.c_str(), kMoveMountFEmptyPath);
    ::close(tree);
    if (rc != 0) return fail(e, KILN_HINT_MOUNT, "move_mount", op.target.c_str());
    return op.attr == 0 || set_attr(op.target.c_str(), op.attr, true, e);
}

bool perform(const Op& op, int fd, ChildError& e) noexcept {
    const char* t = op.target.c_str();
    switch (op.kind) {
        case OpKind::Dir:
            if (::mkdir(t, 0755) != 0 && errno != EEXIST) return fail(e, KILN_HINT_MOUNT, "mkdir", t);
            return true;
        case OpKind::File:
            if (!write_file(t, op.source.data(), op.source.size())) return fail(e, KILN_HINT_MOUNT, "create", t);
            return true;
        case OpKind::Symlink:
            if (::symlink(op.source.c_str(), t) != 0) return fail(e, KILN_HINT_MOUNT, "symlink", t);
            return true;
        case OpKind::Tmpfs:
            if (::mount("tmpfs", t, "tmpfs", op.flags, op.options.c_str()) != 0) return fail(e, KILN_HINT_MOUNT, "mount tmpfs", t);
            return true;
        case OpKind::Proc:
            if (::mount("proc", t, "proc", op.flags, nullptr) != 0) return fail(e, KILN_HINT_MOUNT, "mount proc", t);
            return true;
        case OpKind::Bind:
            return bind_from_fd(fd, op, e);
    }
    return true;
}

// pivot_root(".", ".") stacks the old root on top of the new one at "/";
// detaching it then leaves only the new tree (the trick nsjail and crun use,
// which needs no directory for the old root).
bool pivot(const Plan& plan, ChildError& e) noexcept {
    if (::chdir(plan.staging.c_str()) != 0) return fail(e, KILN_HINT_MOUNT, "chdir", plan.staging.c_str());
    if (::syscall(SYS_pivot_root, ".", ".") != 0) return fail(e, KILN_HINT_MOUNT, "pivot_root", plan.staging.c_str());
    if (::umount2(".", MNT_DETACH) != 0) return fail(e, KILN_HINT_MOUNT, "umount2", "old root");
    if (::chdir("/") != 0) return fail(e, KILN_HINT_MOUNT, "chdir", "/");
    return true;
}

}  // namespace

bool open_sources(const Plan& plan, int* fds, ChildError& e) noexcept {
    std::size_t i = 0;
    for (const Op& op : plan.ops) {
        if (op.kind != OpKind::Bind) continue;
        int fd = ::open(op.source.c_str(), O_PATH | O_CLOEXEC);
        if (fd < 0) return fail(e, KILN_HINT_BIND_SOURCE, "open bind source", op.source.c_str());
        fds[i++] = fd;
    }
    return true;
}

bool enter(const Plan& plan, const int* fds, ChildError& e) noexcept {
    // Nothing mounted here may propagate back to the host.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return fail(e, KILN_HINT_MOUNT, "mount", "/ private");
    std::size_t next_fd = 0;
    for (const Op& op : plan.ops) {
        int fd = op.kind == OpKind::Bind ? fds[next_fd++] : -1;
        if (!perform(op, fd, e)) return false;
        if (fd >= 0) ::close(fd);
    }
    if (!pivot(plan, e)) return false;
    for (const auto& path : plan.read_only_after) {
        if (!set_attr(path.c_str(), kAttrRdonly | kAttrNosuid | kAttrNodev, false, e)) return false;
    }
    return true;
}

}  // namespace kiln::sandbox::mount
