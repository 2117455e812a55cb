// Seccomp (C006, T001, T002), installed last, just before execve.
//
// The filter is compiled with libseccomp in the parent, once per profile,
// and exported as raw BPF: the jail's setup hands it to kiln-init in a
// memfd, and kiln-init installs it in the program with one seccomp(2) call,
// last before execve (kiln_init.c). Denied calls fail with
// EPERM instead of killing, so programs fail cleanly; clone3 fails with
// ENOSYS because its flags cannot be inspected and libc then falls back to
// clone, whose flags can.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "common/result.hpp"
#include "sandbox/child.hpp"
#include "sandbox/runtime.hpp"

namespace kiln::sandbox::seccomp {

struct Program {
    std::vector<sock_filter> filter;
};

Result<Program> build(SeccompProfile profile);

}  // namespace kiln::sandbox::seccomp
