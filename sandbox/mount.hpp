// Mount namespace and root filesystem (C002, C012).
//
// The jail's root is a fresh tmpfs holding read-only binds of what programs
// need (/usr and the /bin /lib /lib64 /sbin links or dirs, and a minimal
// synthetic /etc; or, from a root directory such as an imported image's
// tree, each of its top-level entries, /etc included), a fresh /proc, a
// minimal /dev, a size-limited /tmp and the session's /workspace. It is
// assembled at a staging point in the child's private mount namespace,
// pivot_root'ed into, and the old root detached. Nothing of the host's tree
// stays reachable, and no mount exists outside the jail's namespace, so a
// crash leaves no mount behind on the host.
//
// prepare() in the parent turns the spec into a list of operations with
// absolute paths; open_sources() in the child opens every bind source while
// the child still has the server's host ids (so a root server's 0700
// directories can be opened), and enter() performs the list.
#pragma once

#include <string>
#include <vector>

#include "common/result.hpp"
#include "sandbox/child.hpp"
#include "sandbox/runtime.hpp"

namespace kiln::sandbox::mount {

enum class OpKind { Dir, File, Symlink, Tmpfs, Proc, Bind };

struct Op {
    OpKind kind = OpKind::Dir;
    std::string target;   // absolute path below the staging root
    std::string source;   // Bind: host path; Symlink: link text; File: contents
    std::string options;  // Tmpfs: mount data
    unsigned long flags = 0;       // Tmpfs/Proc: MS_* flags
    unsigned long long attr = 0;   // Bind: MOUNT_ATTR_* set after the bind
    bool source_is_dir = true;     // Bind: whether the mountpoint is a dir or a file
};

struct Plan {
    std::string staging;  // where the root is assembled before pivot_root
    std::vector<Op> ops;
    // After pivot_root, made read-only without recursion (their submounts
    // keep their own flags): the root tmpfs and /dev.
    std::vector<std::string> read_only_after;
    std::vector<std::string> writable_dirs;  // for the Landlock rules
};

// The spec's binds, and room for the jail's own: the system directories,
// /etc, /dev, /workspace and the masks over /proc.
constexpr std::size_t kMaxExtraBinds = 40;
constexpr std::size_t kMaxBinds = kMaxExtraBinds + 40;

// Fails on a bad spec: relative or ".." targets, too many mounts, a missing
// workspace or rootfs directory.
Result<Plan> prepare(const SandboxSpec& spec);
bool open_sources(const Plan& plan, int* fds, ChildError& e) noexcept;
bool enter(const Plan& plan, const int* fds, ChildError& e) noexcept;

}  // namespace kiln::sandbox::mount
