// The runtime interface the rest of Kiln codes against.
//
// A Runtime runs one SandboxSpec and returns an ExecResult. The native
// runtime (make_native_runtime) is Kiln's own container runtime built on
// namespaces, cgroups, seccomp, Landlock and rlimits, in the manner of
// google/nsjail; a Docker runtime will later sit behind the same interface.
//
// Errors: run() returns an Error only when the jail could not be set up
// (structured: step, errno, and as message what the operator should check
// next; a failure in the setup child or in kiln-init comes back as a fixed
// record on an error pipe, sandbox/init_protocol.h). A program that fails
// or crashes is a successful run whose ExecResult carries exit_code or signal.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "common/choices.hpp"
#include "common/result.hpp"

namespace kiln::sandbox {

// Declared with the configuration's other choices (common/choices.hpp),
// which parses and prints them.
using kiln::NetworkMode;
using kiln::SeccompProfile;

struct Limits {
    std::uint64_t memory_bytes = 256ull << 20;  // no swap (C007)
    double cpus = 1.0;                          // CPU quota in cores
    unsigned pids = 64;
    std::chrono::milliseconds timeout{30'000};  // wall clock (C008)
    std::uint64_t tmp_size_bytes = 64ull << 20;
    std::uint64_t output_cap_bytes = 1ull << 20;  // kept of stdout and of stderr each
};

struct BindMount {
    std::string source, target;
    bool writable = false;
};

// A file created in the jail's own root tmpfs, read-only once the root is
// finished: how run_code hands the program text to the interpreter without
// a file on the host (nothing to write, bind or clean up outside the jail).
struct JailFile {
    std::string path;  // absolute, in a directory of its own (not /proc, /dev, /tmp, /workspace, a bind)
    std::string contents;
};

struct SandboxSpec {
    std::vector<std::string> argv;
    // "K=V" entries added on top of the allowlist PATH HOME LANG TERM.
    std::vector<std::string> env;
    std::string stdin_data;
    std::string cwd = "/workspace";
    // Host directory bound read-write at /workspace; empty: none, and a cwd
    // of /workspace falls back to /tmp.
    std::string workspace_dir;
    std::string rootfs;  // empty: read-only binds of the host's /usr, /bin, /lib...
    std::vector<BindMount> mounts;
    std::vector<JailFile> files;
    Limits limits;
    NetworkMode network = NetworkMode::None;
    // A loopback-only network namespace to join (net::Namespace::fd(), a
    // root server only) instead of a fresh one per run; -1: a fresh one.
    int network_fd = -1;
    unsigned uid = 65534, gid = 65534;  // ids inside the jail
    // Host ids the jail's ids map to; 0: the runtime's (HostCapabilities::
    // host_uid). A root server gives each session its own (tools/workspace).
    unsigned host_uid = 0, host_gid = 0;
    // A RunGroup's name (Runtime::make_group): the run's cgroup is made
    // inside it. Empty: directly in the server's.
    std::string group;
    SeccompProfile seccomp = SeccompProfile::Default;
};

struct PhaseTimings {
    std::chrono::microseconds setup{}, run{}, teardown{};
};

struct ExecResult {
    std::optional<int> exit_code;
    std::optional<int> signal;
    bool timed_out = false, oom_killed = false, cancelled = false;
    std::string stdout_data, stderr_data;
    bool stdout_truncated = false, stderr_truncated = false;
    std::uint64_t stdout_bytes = 0, stderr_bytes = 0;  // total produced, kept or not
    std::chrono::milliseconds duration{}, cpu{};
    std::uint64_t peak_memory_bytes = 0;
    PhaseTimings timings;
    // Honest remarks about this run, e.g. "memory limit not enforced: no cgroup".
    std::vector<std::string> notes;
};

struct Progress {
    std::chrono::milliseconds elapsed;
    std::uint64_t stdout_bytes, stderr_bytes;
};

struct RunHooks {
    // request_stop() kills the jail at once; the result has cancelled=true.
    std::stop_token stop;
    // Called at most about 4 times a second while the program runs; may be empty.
    std::function<void(const Progress&)> on_progress;
    // Live output as it arrives (kiln run streams with it); may be empty.
    std::function<void(std::string_view, bool is_stderr)> on_output;
};

struct ControlStatus {
    std::string id;  // "C001".."C013"
    bool in_force = false;
    std::string detail;
};

struct HostCapabilities {
    // The controls this runtime enforces or fails to:
    // C001 C002 C003 C006 C007 C008 C009 C010 C012.
    std::vector<ControlStatus> controls;
    std::string lsm;     // "landlock (ABI 7)", "apparmor", "none"
    std::string cgroup;  // "v2", "v1", "none (rlimits only)"
    bool rootless = false;
    // Host ids the jail user maps to: the tools layer chowns workspace files to them.
    unsigned host_uid = 0, host_gid = 0;
    std::vector<std::string> notes;

    std::set<std::string> in_force() const;
};

// A session's share of the host: a cgroup above its runs with one memory
// limit over all of them and over what they leave behind. Kernel memory a
// run spends on files in its workspace (pages, inodes, dentries) is charged
// to the run's group and moves up to this one when the run's group goes,
// so it stays bounded for as long as the files exist. Destroying the
// RunGroup removes the cgroup (its runs must be over).
class RunGroup {
public:
    virtual ~RunGroup() = default;
    virtual const std::string& name() const = 0;
    // Memory charged to the group now; 0 without a memory cgroup.
    virtual std::uint64_t memory_bytes() const = 0;
    // false: no cgroup to hold it (rlimits only); nothing is bounded.
    virtual bool enforced() const = 0;
};

// A jail that lives across calls (Runtime::start): the program keeps its
// state between requests the caller writes to its stdin. It has the same
// namespaces, mounts, seccomp, Landlock, capabilities and network as a
// one-shot run; SandboxSpec::limits bound the jail as a whole (memory,
// pids, CPU quota) and limits.timeout is its lifetime CPU budget
// (RLIMIT_CPU), not a deadline: per-request deadlines are the caller's.
// Destroying it kills every process of the jail and removes its cgroup.
struct LiveStats {
    std::uint64_t memory_bytes = 0, peak_memory_bytes = 0;
    std::chrono::milliseconds cpu{};  // used so far by the jail's processes
    bool have_cgroup = false;         // false: no figures (rlimits only)
    bool oom_killed = false;
};

class LiveJail {
public:
    virtual ~LiveJail() = default;
    // The program's stdin (write end), stdout and stderr (read ends), all
    // non-blocking; the jail's stderr is where its processes' stray output goes.
    virtual int stdin_fd() const = 0;
    virtual int stdout_fd() const = 0;
    virtual int stderr_fd() const = 0;
    // Readable (poll) once the jail has ended.
    virtual int ended_fd() const = 0;
    virtual bool alive() const = 0;
    // SIGINT to the program (kiln-init forwards it); its children are not signalled.
    virtual Status interrupt() = 0;
    // Kills the jail at once (no-op when it has ended).
    virtual void kill() = 0;
    virtual LiveStats stats() const = 0;
    // Kills the jail if it still runs, reaps it: how the program ended, its CPU
    // time, peak memory, whether the OOM killer struck.
    virtual ExecResult end() = 0;
};

class Runtime {
public:
    virtual ~Runtime() = default;
    virtual std::string_view name() const = 0;
    virtual const HostCapabilities& capabilities() const = 0;
    // Thread-safe: many runs at once from different threads.
    virtual Result<ExecResult> run(const SandboxSpec& spec, const RunHooks& hooks) = 0;
    // Starts a jail that lives until the LiveJail is destroyed; returns once
    // the program has been exec'd. spec.stdin_data must be empty. The jail
    // also dies with the thread that started it (PR_SET_PDEATHSIG, so that
    // a crashed server leaves no jail): call it from a thread that lives as
    // long as the jail should.
    virtual Result<std::unique_ptr<LiveJail>> start(const SandboxSpec& spec) = 0;
    // A group for runs that name it in SandboxSpec::group. name: letters,
    // digits, '-' and '_' (it becomes a directory).
    virtual Result<std::unique_ptr<RunGroup>> make_group(const std::string& name, std::uint64_t memory_limit) = 0;
};

struct NativeOptions {
    // Run one trivial jail at creation to prove the controls work here. A
    // one-shot caller (kiln run) turns it off: its own run fails just as loudly.
    bool probe = true;
    // One run only (kiln run): on cgroup v1 that run's group is the
    // process's own kiln/<pid> subtree instead of a directory inside it.
    bool single_run = false;
    // kiln-init, the jail's pid 1 (sandbox/kiln_init.c). Empty: $KILN_INIT,
    // else the build tree's, else the installed one (see find_kiln_init).
    std::string init_path;
    // Runs that may exist at once: each jail gets 1/(2 * max_runs) of the
    // server user's per-user kernel budgets (sandbox/ucounts.hpp).
    unsigned max_runs = 16;
};

// Probes the host once and states honestly what is in force.
Result<std::unique_ptr<Runtime>> make_native_runtime(const NativeOptions& options);
// At server start: kill and remove the cgroups of a crashed server's runs
// (kiln/<pid> with no live pid). Mounts and processes die with the jails'
// namespaces; workspaces under server.state_dir are tools/' to remove.
Status reap_leftovers();

}  // namespace kiln::sandbox
