// The seccomp rules (C006), compiled with libseccomp. This runs at build
// time, in kiln-seccomp-gen (seccomp_gen.cpp), whose output the server
// embeds: see seccomp_rules.hpp.
#include "sandbox/seccomp_rules.hpp"

#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>

#include "common/unique_fd.hpp"

namespace kiln::sandbox::seccomp {
namespace {

struct CtxDeleter {
    void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

// Calls that reach kernel surfaces a sandboxed program never needs.
constexpr const char* kDenied[] = {
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "fsopen", "fsconfig", "fsmount", "fspick", "open_tree", "move_mount", "mount_setattr",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff", "reboot", "acct",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "iopl", "ioperm",
    "quotactl", "quotactl_fd", "lookup_dcookie", "syslog", "vhangup", "uselib", "nfsservctl",
    "fanotify_init", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
};

constexpr unsigned long kNamespaceFlags[] = {CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNS, CLONE_NEWNET,
                                             CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP, CLONE_NEWTIME};

Status deny(void* ctx, const char* name, int err, unsigned n = 0, const scmp_arg_cmp* args = nullptr) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return {};  // not a syscall on this architecture
    int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(err), nr, n, args);
    if (rc != 0) return make_error("seccomp_rule_add", std::string(name), -rc);
    return {};
}

Status add_common_rules(void* ctx) {
    for (const char* name : kDenied) {
        if (Status st = deny(ctx, name, EPERM); !st) return st;
    }
    if (Status st = deny(ctx, "clone3", ENOSYS); !st) return st;
    // clone() with any namespace flag: one rule per flag, since rules OR.
    for (unsigned long flag : kNamespaceFlags) {
        scmp_arg_cmp arg = SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag);
        if (Status st = deny(ctx, "clone", EPERM, 1, &arg); !st) return st;
    }
    // Personalities that weaken ASLR. personality(0xffffffff) only queries
    // and must work; libseccomp allows one comparison per argument, so
    // "ADDR_NO_RANDOMIZE set and some other bit clear" is one rule per bit.
    for (unsigned bit = 0; bit < 32; ++bit) {
        const scmp_datum_t other = 1ull << bit;
        if (other == ADDR_NO_RANDOMIZE) continue;
        scmp_arg_cmp arg = SCMP_A0(SCMP_CMP_MASKED_EQ, ADDR_NO_RANDOMIZE | other, ADDR_NO_RANDOMIZE);
        if (Status st = deny(ctx, "personality", EPERM, 1, &arg); !st) return st;
    }
    // Raw packet and netlink sockets reach the kernel's network config.
    for (int family : {AF_NETLINK, AF_PACKET}) {
        scmp_arg_cmp arg = SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family));
        if (Status st = deny(ctx, "socket", EPERM, 1, &arg); !st) return st;
    }
    // Pushing bytes into another terminal's input queue.
    for (unsigned long req : {static_cast<unsigned long>(TIOCSTI), static_cast<unsigned long>(TIOCLINUX)}) {
        scmp_arg_cmp arg = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, req);
        if (Status st = deny(ctx, "ioctl", EPERM, 1, &arg); !st) return st;
    }
    return {};
}

Status add_no_new_process_rules(void* ctx) {
    for (const char* name : {"socket", "socketpair", "fork", "vfork"}) {
        int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR) continue;
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (rc != 0) return make_error("seccomp_rule_add", name, -rc);
    }
    // clone() without CLONE_THREAD creates a process.
    scmp_arg_cmp arg = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0);
    return deny(ctx, "clone", EPERM, 1, &arg);
}

Result<std::vector<sock_filter>> export_bpf(void* ctx) {
    UniqueFd mem(::memfd_create("kiln-seccomp", MFD_CLOEXEC));
    if (!mem) return sys_error("memfd_create", "for the seccomp program");
    if (int rc = seccomp_export_bpf(ctx, mem.get()); rc != 0) return make_error("seccomp_export_bpf", "", -rc);
    struct stat st {};
    if (::fstat(mem.get(), &st) != 0) return sys_error("fstat", "seccomp memfd");
    std::vector<sock_filter> filter(static_cast<std::size_t>(st.st_size) / sizeof(sock_filter));
    const auto bytes = static_cast<ssize_t>(filter.size() * sizeof(sock_filter));
    if (::pread(mem.get(), filter.data(), static_cast<std::size_t>(bytes), 0) != bytes) return sys_error("pread", "seccomp memfd");
    return filter;
}

}  // namespace

Result<std::vector<sock_filter>> compile_rules(Filter which) {
    Ctx ctx(seccomp_init(SCMP_ACT_ALLOW));
    if (!ctx) return make_error("seccomp_init", "libseccomp could not allocate a filter", ENOMEM);
    // 32-bit and x32 entry points have different syscall numbers and would
    // bypass every rule below: refuse them outright.
    if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(EPERM)); rc != 0)
        return make_error("seccomp_attr_set", "SCMP_FLTATR_ACT_BADARCH", -rc);
    // The parent's no_new_privs is set by the child itself (caps::drop_all).
    if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0); rc != 0)
        return make_error("seccomp_attr_set", "SCMP_FLTATR_CTL_NNP", -rc);
    // A binary tree over syscall numbers instead of one long if-chain. When
    // a filter is attached the kernel runs it for every syscall number (to
    // cache the ones always allowed), with interrupts off: with the chain
    // that took ~165 us per jail, with the tree ~80 us (fork + seccomp(2)
    // loop, medians of 300).
    if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2); rc != 0)
        return make_error("seccomp_attr_set", "SCMP_FLTATR_CTL_OPTIMIZE", -rc);
    Status rules = which == Filter::Base ? add_common_rules(ctx.get()) : add_no_new_process_rules(ctx.get());
    if (!rules) return rules.error();
    return export_bpf(ctx.get());
}

}  // namespace kiln::sandbox::seccomp
