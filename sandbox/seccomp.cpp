#include "sandbox/seccomp.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sandbox/child.hpp"
#include "sandbox/seccomp_rules.hpp"

namespace kiln::sandbox::seccomp {

Result<UniqueFd> sealed(Filter which) {
    const bool base = which == Filter::Base;
    const sock_filter* filter = base ? kBaseFilter : kNoNewProcessFilter;
    const std::size_t length = base ? kBaseFilterLength : kNoNewProcessFilterLength;
    UniqueFd mem(::memfd_create("kiln-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!mem) return sys_error("memfd_create", "for the seccomp program");
    if (!write_all(mem.get(), filter, length * sizeof(sock_filter))) return sys_error("write", "seccomp memfd");
    if (::fcntl(mem.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0)
        return sys_error("fcntl F_ADD_SEALS", "seccomp memfd");
    return mem;
}

}  // namespace kiln::sandbox::seccomp
