// Seccomp (C006, T001, T002), installed last, just before execve.
//
// Two filters, compiled with libseccomp when Kiln is built (seccomp_rules.hpp),
// are put once into sealed memfds that every jail's setup passes to kiln-init:
//   - the base filter, the default profile's deny list. kiln-init installs
//     it on itself before it starts the program, which inherits it: one
//     filter for the kernel to check and JIT-compile per run, not two.
//   - the no-new-process filter (no sockets, no fork, no clone without
//     CLONE_THREAD), stacked on the base. The strict profile's program
//     installs it last before execve; kiln-init installs it on itself once
//     the program runs. Stacked filters all apply, so strict = base + this.
// Denied calls fail with EPERM instead of killing, so programs fail
// cleanly; clone3 fails with ENOSYS because its flags cannot be inspected
// and libc then falls back to clone, whose flags can.
#pragma once

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace kiln::sandbox::seccomp {

enum class Filter {
    Base,          // every jailed process: the default profile
    NoNewProcess,  // stacked on Base: the strict profile, and kiln-init itself
};

// The filter as raw sock_filter instructions in a sealed memfd (no write,
// grow, shrink or further seals): read-only for every jail it is given to.
Result<UniqueFd> sealed(Filter which);

}  // namespace kiln::sandbox::seccomp
