// Control groups (C007, T003): memory without swap, pids and CPU quota per
// run, plus the figures the result reports (peak memory, CPU time, OOM).
//
// Each run gets its own group, kiln/<server-pid>/<run-id> under the
// server's own cgroup (or the hierarchy root, whichever is writable). A
// Group removes itself on destruction, killing what is left in it first.
// cgroup_v1.cpp and cgroup_v2.cpp implement the two kernel interfaces.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "sandbox/child.hpp"
#include "sandbox/runtime.hpp"

namespace kiln::sandbox::cgroup {

struct Stats {
    std::uint64_t peak_memory_bytes = 0;
    std::uint64_t memory_bytes = 0;  // charged now (what the group's processes left included)
    std::chrono::microseconds cpu{};
    bool have_cpu = false;
    bool oom_killed = false;
};

class Group {
public:
    virtual ~Group() = default;
    // Moves a process in; called before the jailed child is released.
    virtual Status add(pid_t pid) = 0;
    // How a child gets into the group before its first step that matters:
    // a v2 group's directory to clone into (clone_process), or v1 `tasks`
    // files the child writes "0" to first thing (join_self); neither: the
    // parent add()s it after the clone.
    struct Entry {
        static constexpr int kMaxTasksFds = 4;  // memory, pids, cpu, cpuacct
        int cgroup_fd = -1;
        int tasks_fds[kMaxTasksFds] = {-1, -1, -1, -1};
    };
    // Calls `spawn` (a clone; it returns the child's pid, or -1 with errno
    // set) and returns the child, which enters this group as `entry` says.
    // By default: spawn, then add(). If the group cannot take the child,
    // the child is killed and reaped before the error returns.
    using SpawnFn = std::function<pid_t(const Entry& entry)>;
    virtual Result<pid_t> spawn_inside(const SpawnFn& spawn);
    virtual Stats stats() const = 0;
    // Kills every process left in the group and waits until it is empty.
    virtual void kill_all() = 0;
    // Kills what is left and removes the group's directories.
    virtual Status remove() = 0;
};

class Manager {
public:
    virtual ~Manager() = default;
    virtual std::string kind() const = 0;  // "v1" or "v2"
    virtual std::string root() const = 0;  // this server's subtree, for messages
    // run_id may name a parent made by create_parent: "<parent>/<run>".
    virtual Result<std::unique_ptr<Group>> create(const std::string& run_id, const Limits& limits) = 0;
    // A group above runs (a session's) whose memory limit covers them all
    // and whatever they leave charged to it when their own groups go.
    virtual Result<std::unique_ptr<Group>> create_parent(const std::string& name, std::uint64_t memory_bytes) = 0;
};

// Where the hierarchies are mounted and where this process sits in them:
// read once and shared by the v2 and v1 probes (each file costs a `kiln
// run` about 0.05 ms to read).
struct HostView {
    std::string mounts;       // /proc/self/mounts
    std::string own_cgroups;  // /proc/self/cgroup
    static HostView read();
};

// Opens this server's subtree (creating it); fails with a message that says
// why the hierarchy is unusable (not mounted, not writable, no controllers).
// v1 single_run (a one-shot `kiln run`): the one run's group is the subtree
// itself, kiln/<pid>, which saves creating and removing a directory in each
// of four hierarchies (about 0.3 ms); a second create() fails.
Result<std::unique_ptr<Manager>> open_v1(const HostView& host, bool single_run = false);
Result<std::unique_ptr<Manager>> open_v2(const HostView& host);
inline Result<std::unique_ptr<Manager>> open_v2() { return open_v2(HostView::read()); }

// A v2 manager on an explicit hierarchy with an explicit controller set;
// the tests use it on hosts whose only v2 hierarchy has no controllers.
Result<std::unique_ptr<Manager>> open_v2_at(const std::string& base_dir, std::vector<std::string> controllers);
// The same with base_dir's cgroup.controllers already read.
Result<std::unique_ptr<Manager>> open_v2_at(const std::string& base_dir, std::vector<std::string> controllers,
                                            const std::string& available);

// Kills and removes the subtrees of kiln servers that are no longer running.
Status reap_stale();

// Helpers shared by both versions.
Result<std::string> read_text(const std::string& path);
Status write_text(const std::string& path, const std::string& text);
// Waits for a (possibly just emptied) cgroup directory to be removable.
Status remove_dir(const std::string& path);
bool pid_alive(pid_t pid);
// A fork-like clone with `flags` (CLONE_NEW* and the exit signal). With a
// cgroup_fd (a v2 group's directory) it is clone3 with CLONE_INTO_CGROUP,
// so the child starts in that group. Returns 0 in the child, like fork.
pid_t clone_process(unsigned long flags, int cgroup_fd);
// In the child: moves the calling process into the v1 groups of `entry`
// (a thread moving itself takes no global lock; see cgroup_v1.cpp).
// Allocation-free; false with errno set on the first failure.
bool join_self(const Group::Entry& entry) noexcept;
// In the child, once born in its group: a cgroup namespace, so that the
// jail sees its own group as "/" (C012).
bool enter_namespace(ChildError& e) noexcept;
// Kills and reaps a child that will not be used.
void discard_child(pid_t pid);
void kill_procs_in(const std::string& procs_file);
// Removes <kiln_dir>/<pid> subtrees whose server pid is gone.
void reap_stale_in(const std::string& kiln_dir);
Status reap_stale_v1();
Status reap_stale_v2();

}  // namespace kiln::sandbox::cgroup
