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

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <memory>
#include <vector>

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
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "kcmp", "pidfd_getfd",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff", "reboot", "acct",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "iopl", "ioperm",
    "quotactl", "quotactl_fd", "lookup_dcookie", "syslog", "vhangup", "uselib", "nfsservctl",
    "fanotify_init", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
    "sethostname", "setdomainname", "ustat", "sysfs",
    // NUMA placement: binding memory to, or moving pages between, the
    // host's nodes, which Docker's default profile refuses too.
    "mbind", "set_mempolicy", "set_mempolicy_home_node", "migrate_pages", "move_pages",
};

// Calls newer than the libseccomp Kiln builds with (Debian 12's 2.5.4
// names none of them), by number: from 424 on, one table numbers new calls
// alike on every architecture but alpha.
struct NumberedCall {
    const char* name;
    int nr;
};
constexpr NumberedCall kDeniedByNumber[] = {
    {"lsm_get_self_attr", 459}, {"lsm_set_self_attr", 460}, {"lsm_list_modules", 461}, {"open_tree_attr", 467},
};

constexpr unsigned long kNamespaceFlags[] = {CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNS, CLONE_NEWNET,
                                             CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP, CLONE_NEWTIME};

// The socket families a sandboxed program needs. Every other family,
// including those later kernels add, is refused: netlink reaches the
// network namespace's configuration and, in a shared namespace, the host's
// uevents; vsock reaches the hypervisor on a VM whatever the namespace;
// and a family the kernel has not loaded makes it load the module (rds,
// tipc, can...), whose code then runs on the jail's behalf.
constexpr std::uint32_t kSocketFamilies[] = {AF_UNIX, AF_INET, AF_INET6};

// Where the rules go: libseccomp's filter (compile_rules) or Docker's
// seccomp profile (docker_profile_json). One table, two readers, so the
// Docker runtime denies what the native jail denies.
class Sink {
public:
    virtual ~Sink() = default;
    // Denies `name` (number `nr` when libseccomp may not know the name, else
    // -1) with errno `err` when every comparison in `args` holds.
    virtual Status deny(const char* name, int nr, int err, unsigned n, const scmp_arg_cmp* args) = 0;
};

Status deny_nr(Sink& sink, int nr, const char* name, int err, unsigned n = 0, const scmp_arg_cmp* args = nullptr) {
    return sink.deny(name, nr, err, n, args);
}

Status deny(Sink& sink, const char* name, int err, unsigned n = 0, const scmp_arg_cmp* args = nullptr) {
    return sink.deny(name, -1, err, n, args);
}

// personality() takes an unsigned int. Allowed are the personalities
// Docker's default profile allows: PER_LINUX (0), PER_LINUX32, UNAME26,
// both, and 0xffffffff, which only asks. ADDR_NO_RANDOMIZE (weaker ASLR)
// and READ_IMPLIES_EXEC (every readable mapping executable) are among the
// rest. A refused value sets a bit outside PER_LINUX32|UNAME26 and clears
// some bit. Going up from that set bit (past bit 31 to bit 0), the first
// clear bit c follows a run of set bits, so bit c-1 is set; or, when c-1 is
// one of the two allowed bits, c-2 is (they are not neighbours, and the run
// began outside them). So one rule per bit c, "c clear and c-1 (or c-2)
// set", matches every refused value and no allowed one. All masks lie in
// the low 32 bits: the filter judges what the kernel reads.
constexpr std::uint32_t kPersonalityBits = std::uint32_t{PER_LINUX32} | UNAME26;
static_assert((kPersonalityBits & (kPersonalityBits << 1)) == 0 && (kPersonalityBits & 0x80000001u) == 0,
              "the rule below needs the allowed bits apart, and not at bit 0 or 31");

Status deny_other_personalities(Sink& ctx) {
    for (unsigned c = 0; c < 32; ++c) {
        unsigned below = (c + 31) % 32;
        if (kPersonalityBits & (1u << below)) below = (c + 30) % 32;
        scmp_arg_cmp cmp = SCMP_A0(SCMP_CMP_MASKED_EQ, (1ull << c) | (1ull << below), 1ull << below);
        if (Status st = deny(ctx, "personality", EPERM, 1, &cmp); !st) return st;
    }
    return {};
}

// Refuses the call unless argument `arg`, all 64 bits of it, is one of
// `allowed`, a few small numbers: one rule for everything above the
// largest, one for each gap below it. A value with a bit above 31 set is
// refused even where the kernel, which reads an int, would find an
// allowed value in its low half: no libc sets those bits, and refusing
// more than the kernel distinguishes is the safe side of the comparison.
Status deny_unless_one_of_small(Sink& ctx, const char* name, unsigned arg, const std::vector<std::uint32_t>& allowed) {
    const std::uint32_t largest = *std::max_element(allowed.begin(), allowed.end());
    for (std::uint32_t v = 0; v < largest; ++v) {
        if (std::find(allowed.begin(), allowed.end(), v) != allowed.end()) continue;
        scmp_arg_cmp cmp = SCMP_CMP(arg, SCMP_CMP_EQ, v);
        if (Status st = deny(ctx, name, EPERM, 1, &cmp); !st) return st;
    }
    scmp_arg_cmp above = SCMP_CMP(arg, SCMP_CMP_GT, largest);
    return deny(ctx, name, EPERM, 1, &above);
}

Status add_common_rules(Sink& ctx) {
    for (const char* name : kDenied) {
        if (Status st = deny(ctx, name, EPERM); !st) return st;
    }
    for (const NumberedCall& call : kDeniedByNumber) {
        if (Status st = deny_nr(ctx, call.nr, call.name, EPERM); !st) return st;
    }
    if (Status st = deny(ctx, "clone3", ENOSYS); !st) return st;
    // clone() with any namespace flag: one rule per flag, since rules OR.
    // The kernel takes the low 32 bits of clone's flags (lower_32_bits in
    // kernel/fork.c); each mask is one bit among them.
    for (unsigned long flag : kNamespaceFlags) {
        scmp_arg_cmp arg = SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag);
        if (Status st = deny(ctx, "clone", EPERM, 1, &arg); !st) return st;
    }
    if (Status st = deny_other_personalities(ctx); !st) return st;
    for (const char* call : {"socket", "socketpair"}) {
        if (Status st = deny_unless_one_of_small(ctx, call, 0, {std::begin(kSocketFamilies), std::end(kSocketFamilies)}); !st)
            return st;
    }
    // Pushing bytes into another terminal's input queue. ioctl's request
    // is an unsigned int to the kernel: compared on its low 32 bits.
    for (unsigned long req : {static_cast<unsigned long>(TIOCSTI), static_cast<unsigned long>(TIOCLINUX)}) {
        scmp_arg_cmp arg = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, req);
        if (Status st = deny(ctx, "ioctl", EPERM, 1, &arg); !st) return st;
    }
    return {};
}

Status add_no_new_process_rules(Sink& ctx) {
    for (const char* name : {"socket", "socketpair", "fork", "vfork"}) {
        if (Status st = deny(ctx, name, EPERM); !st) return st;
    }
    // clone() without CLONE_THREAD creates a process.
    scmp_arg_cmp arg = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0);
    return deny(ctx, "clone", EPERM, 1, &arg);
}

Status add_rules(Sink& sink, Filter which) {
    return which == Filter::Base ? add_common_rules(sink) : add_no_new_process_rules(sink);
}

class LibseccompSink final : public Sink {
public:
    explicit LibseccompSink(void* ctx) : ctx_(ctx) {}
    Status deny(const char* name, int nr, int err, unsigned n, const scmp_arg_cmp* args) override {
        if (nr < 0) nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR) return {};  // not a syscall on this architecture
        int rc = seccomp_rule_add_array(ctx_, SCMP_ACT_ERRNO(err), nr, n, args);
        if (rc != 0) return make_error("seccomp_rule_add", std::string(name), -rc);
        return {};
    }

private:
    void* ctx_;
};

const char* op_name(scmp_compare op) {
    switch (op) {
        case SCMP_CMP_NE: return "SCMP_CMP_NE";
        case SCMP_CMP_LT: return "SCMP_CMP_LT";
        case SCMP_CMP_LE: return "SCMP_CMP_LE";
        case SCMP_CMP_EQ: return "SCMP_CMP_EQ";
        case SCMP_CMP_GE: return "SCMP_CMP_GE";
        case SCMP_CMP_GT: return "SCMP_CMP_GT";
        case SCMP_CMP_MASKED_EQ: return "SCMP_CMP_MASKED_EQ";
        case _SCMP_CMP_MIN:
        case _SCMP_CMP_MAX: break;
    }
    return "SCMP_CMP_EQ";
}

// One entry of Docker's "syscalls" list per rule; Docker's MASKED_EQ reads
// "value" as the mask and "valueTwo" as the value, as libseccomp does.
class DockerJsonSink final : public Sink {
public:
    Status deny(const char* name, int /*nr*/, int err, unsigned n, const scmp_arg_cmp* args) override {
        std::string entry = std::string(entries_.empty() ? "" : ",\n") + "    {\"names\": [\"" + name +
                            "\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": " + std::to_string(err) + ", \"args\": [";
        for (unsigned i = 0; i < n; ++i)
            entry += std::string(i ? ", " : "") + "{\"index\": " + std::to_string(args[i].arg) +
                     ", \"value\": " + std::to_string(args[i].datum_a) + ", \"valueTwo\": " +
                     std::to_string(args[i].datum_b) + ", \"op\": \"" + op_name(args[i].op) + "\"}";
        entries_ += entry + "]}";
        return {};
    }
    std::string json() const {
        // Only x86_64 is listed: a call through a 32-bit or x32 entry
        // point meets the architecture check first and is refused, as in
        // the native filter (SCMP_FLTATR_ACT_BADARCH).
        return "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"architectures\": [\"SCMP_ARCH_X86_64\"],\n"
               "  \"syscalls\": [\n" + entries_ + "\n  ]\n}\n";
    }

private:
    std::string entries_;
};

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
    LibseccompSink sink(ctx.get());
    if (Status st = add_rules(sink, which); !st) return st.error();
    return export_bpf(ctx.get());
}

Result<std::string> docker_profile_json(SeccompProfile profile) {
    DockerJsonSink sink;
    if (Status st = add_rules(sink, Filter::Base); !st) return st.error();
    if (profile == SeccompProfile::Strict) {
        if (Status st = add_rules(sink, Filter::NoNewProcess); !st) return st.error();
    }
    return sink.json();
}

}  // namespace kiln::sandbox::seccomp
