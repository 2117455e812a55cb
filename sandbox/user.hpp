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

}  // namespace kiln::sandbox::user
