// User namespace (C001, C009, T004): the jail's ids map to one unprivileged
// host id, so even a root inside would be nobody outside.
//
// prepare() in the parent computes the map text; write_maps() in the parent
// writes it for the cloned child; enter() in the child switches to the jail
// ids. Because uid 0 is not mapped in the jail's namespace, the switch does
// not trigger the kernel's "root drops to non-root" capability fixup: the
// setup process keeps its namespace capabilities until caps::drop_all().
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.hpp"
#include "sandbox/child.hpp"

namespace kiln::sandbox::user {

struct Plan {
    std::string uid_map, gid_map;
    bool deny_setgroups = false;  // unprivileged writers must deny setgroups
    unsigned uid = 65534, gid = 65534;
};

Plan prepare(unsigned jail_uid, unsigned jail_gid, unsigned host_uid, unsigned host_gid, bool rootless);
Status write_maps(pid_t child, const Plan& plan);
bool enter(const Plan& plan, ChildError& e) noexcept;
// In the child, after enter() (an id change clears it): SIGKILL when the
// server thread that cloned it ends, so no jail outlives its server.
bool die_with_server(ChildError& e) noexcept;

// For a rootless server, before it starts any thread: a user namespace of
// its own, with its uid and gid mapped to themselves, and a mount namespace
// it owns. Its ids and files are the same as before; what it gains is the
// right to mount there, so its session workspaces can be tmpfs with a size
// and inode quota instead of plain directories on the host's disk (a full
// disk would also silence the audit log). The mounts vanish with the server.
// Jails are then made inside this namespace, with the same id maps as before.
Status own_namespaces_for_rootless_server();

}  // namespace kiln::sandbox::user
