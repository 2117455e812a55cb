// Session workspaces: one directory per MCP session, bind-mounted at
// /workspace in every run of that session so files persist between calls.
//
// As root each workspace is its own tmpfs with a size quota (RAM-backed and
// gone at unmount: part of C013, and a separate filesystem so no hard link
// can reach outside it). Without root Kiln cannot mount, so the workspace is
// a plain directory under the state dir and the quota is not enforced; the
// Workspace says so (ram_backed() false) instead of pretending.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <optional>
#include <thread>
#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "sandbox/net.hpp"
#include "sandbox/runtime.hpp"

namespace kiln::tools {

// Host ids for sessions: a root server maps each session's jails to ids of
// their own (SandboxSpec::host_uid), so the budgets the kernel keeps per
// host user (pipe buffer pages, epoll watches) are per session.
class HostIdPool {
public:
    HostIdPool(unsigned base, unsigned count) : base_(base), used_(count, false) {}
    // An unused id (the same number for uid and gid), or nothing when all are taken.
    std::optional<unsigned> take();
    void give_back(unsigned id);

private:
    std::mutex mutex_;
    unsigned base_;
    std::vector<bool> used_;
};

struct WorkspaceOptions {
    std::string root_dir;  // <state_dir>/workspaces/<pid>: one per server process
    std::uint64_t size_bytes = 512ull << 20;
    std::uint64_t max_files = 65536;  // the tmpfs's nr_inodes
    std::chrono::milliseconds idle_ttl{30 * 60 * 1000};
    unsigned max_sessions = 64;
    uid_t owner_uid = 0;  // host ids the jail's user maps to, when there is no pool
    gid_t owner_gid = 0;
    // Root: each session's own host ids (owner of its files, its jails' ids).
    std::shared_ptr<HostIdPool> session_ids;
    // One loopback-only network namespace per session, shared by its runs
    // (root servers; sandbox/net.hpp). false: each run makes its own.
    bool session_network = false;
    // When set, each session gets a RunGroup (sandbox/runtime.hpp) with
    // this memory limit, so what its runs leave in the workspace (kernel
    // memory included) stays charged to something bounded.
    sandbox::Runtime* runtime = nullptr;
    std::uint64_t session_memory_bytes = 0;
};

class Workspace {
public:
    // The host ids that own its files and that its jails map to.
    struct Owner {
        uid_t uid = 0;
        gid_t gid = 0;
        std::shared_ptr<HostIdPool> pool;  // given back to it on destruction
    };
    Workspace(std::string path, UniqueFd dir_fd, bool ram_backed, std::uint64_t quota, bool session_network,
              std::unique_ptr<sandbox::RunGroup> group, Owner owner);
    ~Workspace();
    Workspace(const Workspace&) = delete;
    Workspace& operator=(const Workspace&) = delete;

    const std::string& path() const { return path_; }
    int dir_fd() const { return dir_fd_.get(); }
    bool ram_backed() const { return ram_backed_; }
    std::uint64_t quota_bytes() const { return quota_; }
    // For SandboxSpec::group; empty when the session has no run group.
    uid_t owner_uid() const { return owner_.uid; }
    gid_t owner_gid() const { return owner_.gid; }
    std::string group_name() const { return group_ ? group_->name() : std::string(); }
    const sandbox::RunGroup* group() const { return group_.get(); }
    std::chrono::steady_clock::time_point last_used() const;
    void touch();

    // Removes every file; the workspace stays usable.
    Status reset();

    // The session's network namespace for SandboxSpec::network_fd, made at
    // the first run; -1 when runs make their own (not a session network, or
    // it could not be made: logged once, and runs still get a private one).
    int network_fd();

private:
    std::string path_;
    UniqueFd dir_fd_;
    bool ram_backed_;
    std::uint64_t quota_;
    bool session_network_;
    std::unique_ptr<sandbox::net::Namespace> network_;
    std::unique_ptr<sandbox::RunGroup> group_;  // removed after the files are gone
    Owner owner_;
    mutable std::mutex mutex_;
    std::chrono::steady_clock::time_point last_used_;
};

class WorkspaceManager {
public:
    explicit WorkspaceManager(WorkspaceOptions options);
    ~WorkspaceManager();  // destroys every workspace

    // Removes what crashed servers left beside root_dir (sibling <pid>
    // directories whose process is gone): unmounts, deletes.
    Status remove_leftovers();

    // The session's workspace, created on first use.
    Result<std::shared_ptr<Workspace>> acquire(const std::string& session_id);
    // The session ended: its workspace is destroyed once no run uses it.
    void release(const std::string& session_id);
    // Destroys workspaces idle for longer than idle_ttl; returns how many.
    std::size_t reap_idle();

    // Runs reap_idle() every `interval` on a background thread until the
    // manager is destroyed.
    void start_reaper(std::chrono::milliseconds interval);

    std::size_t count() const;
    const WorkspaceOptions& options() const { return options_; }

private:
    Result<std::shared_ptr<Workspace>> create(const std::string& session_id);
    Result<bool> mount_quota(const std::string& path, const Workspace::Owner& owner);
    Result<Workspace::Owner> take_owner();

    WorkspaceOptions options_;
    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<Workspace>> live_;
    std::atomic<bool> warned_unbounded_{false};
    std::jthread reaper_;  // last member: stops before the map goes away
};

// Unmounts (if mounted) and deletes one workspace directory.
Status destroy_workspace_dir(const std::string& path);
// mkdir -p with mode 0700 for each directory it makes.
Status make_private_dirs(const std::string& path);
// Calls fn every `interval` on a thread of its own until the thread is
// stopped (destroyed).
std::jthread run_every(std::chrono::milliseconds interval, std::function<void()> fn);

}  // namespace kiln::tools
