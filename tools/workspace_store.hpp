// Explicit workspaces: workspace_create hands out an unguessable handle
// bound to the caller's principal, and any call that names the handle works
// in that workspace, on whichever replica serves it (docs/workspaces.md).
//
// The store is `local` (the handle's workspace is a tmpfs of this machine's
// WorkspaceManager, like a session's) or `shared`: a directory every replica
// mounts. A shared workspace is a directory tree published through a
// `current` symlink; a call takes the workspace's lock (an OFD lock on its
// `lock` file, which works between processes and, on NFS, between
// machines), copies the tree into a local tmpfs workspace with the quota,
// works there, and publishes the result as a new tree with one rename.
// A replica that dies mid-call loses its lock with its process, and
// leaves at worst an unpublished tree that the next holder removes:
// the published tree is never half written.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/choices.hpp"
#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "tools/workspace.hpp"
#include "tools/workspace_fs.hpp"

namespace kiln::tools {

// 128 random bits as 32 lowercase hex digits.
std::string new_workspace_handle();
bool is_workspace_handle(std::string_view text);
// The optional `workspace` argument of run_code, run_command and the file tools.
nlohmann::json workspace_arg_schema();

struct SharedStoreOptions {
    std::string dir;  // <workspace.shared_dir>/workspaces
    std::string replica_id;
    std::uint64_t max_bytes = 512ull << 20;  // workspace.size
    std::uint64_t max_inodes = 65536;        // workspace.max_files
    std::chrono::milliseconds idle_ttl{30 * 60 * 1000};
    std::chrono::milliseconds lock_wait{60'000};  // workspace.queue_wait
};

// What a tree holds, as the quota counts it: bytes of regular files and
// symlink targets, and every file, directory and link.
struct TreeUsage {
    std::uint64_t bytes = 0;
    std::uint64_t inodes = 0;
};

// An exclusive OFD lock on one file, held until destroyed (or until the
// process dies: the kernel, or the NFS server when a client's lease ends,
// lets it go).
class WorkspaceLock {
public:
    // Waits up to `wait`; an error names the file and how long was waited.
    static Result<WorkspaceLock> acquire(const std::string& path, std::chrono::milliseconds wait);
    // Does not wait: nothing when another open file description holds it.
    // create false: a missing file is an error (ENOENT), not made; a
    // sweeper must not make a lock file in a directory being removed.
    static Result<std::optional<WorkspaceLock>> try_acquire(const std::string& path, bool create = true);
    // Still the file at `path` (it was not renamed away or removed while
    // this one waited for it).
    bool still_at(const std::string& path) const;
    int fd() const { return fd_.get(); }

private:
    explicit WorkspaceLock(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;
};

// Whether a call may change the workspace: a shared workspace's local copy
// stays in step with the published tree after a read, and is reused by the
// next call instead of copied again.
enum class WorkspaceAccess { Read, Write };

// One call's use of a workspace: the directory it works in, and for a
// shared workspace its lock, held until the use ends.
class WorkspaceUse {
public:
    WorkspaceUse(WorkspaceUse&&) noexcept;
    WorkspaceUse& operator=(WorkspaceUse&&) noexcept;
    ~WorkspaceUse();

    // The workspace the call works in (a shared one's local copy).
    Workspace& workspace() const { return *ws_; }
    // For a holder that outlives the call (a persistent interpreter's jail binds it).
    std::shared_ptr<Workspace> keep_workspace() const { return ws_; }
    int dir_fd() const { return ws_->dir_fd(); }
    wsfs::Owner owner() const { return {ws_->owner_uid(), ws_->owner_gid()}; }
    // Makes the call's changes the workspace's. Shared: the copy is checked
    // against the quota and published in one rename, or nothing changes.
    Status commit();

private:
    friend class WorkspaceStore;
    struct Shared;
    WorkspaceUse(std::shared_ptr<Workspace> ws, std::unique_ptr<Shared> shared);
    std::shared_ptr<Workspace> ws_;
    std::unique_ptr<Shared> shared_;
};

class WorkspaceStore {
public:
    // `local` makes every workspace: the sessions', a local store's
    // ("h<handle>") and the shared ones' local copies ("w<handle>"). Session
    // ids are "<prefix>-<hex>", so the names never meet.
    WorkspaceStore(WorkspaceManager& local, WorkspaceStoreKind kind, SharedStoreOptions shared);
    ~WorkspaceStore();

    WorkspaceStoreKind kind() const { return kind_; }
    // Creates the shared dir; for `local`, nothing to do.
    Status prepare();

    // A new workspace bound to `principal`; returns its handle.
    Result<std::string> create(const std::string& principal);
    // Removes the handle's workspace (waits for a call using it to end).
    Status remove(const std::string& handle, const std::string& principal);
    // The workspace a call works in: the session's own when `handle` is
    // empty, else the handle's, which must be `principal`'s.
    Result<WorkspaceUse> open(const std::string& session_id, const std::string& principal, const std::string& handle,
                              WorkspaceAccess access = WorkspaceAccess::Write);

    // Removes workspaces idle longer than idle_ttl (in a shared store,
    // any replica's), and what crashed holders left: unpublished trees and
    // half-made or half-removed workspaces whose lock nobody holds. A
    // workspace in use is locked and never touched. Returns how many
    // workspaces went.
    std::size_t sweep();
    // sweep() every `interval` on a background thread until destroyed.
    void start_sweeper(std::chrono::milliseconds interval);

    // The "no such workspace" error: the same words for an unknown,
    // expired, deleted or another principal's handle, so the answer tells
    // no caller whether someone else's workspace exists.
    static Error not_found(const std::string& handle);

private:
    struct LocalHandle {
        std::string principal_hash;
        std::shared_ptr<Workspace> ws;
    };
    Result<WorkspaceUse> open_local(const std::string& handle, const std::string& principal_hash);
    Result<WorkspaceUse> open_shared(const std::string& handle, const std::string& principal_hash, WorkspaceAccess access);
    // The local copy of a shared workspace, filled with tree-<generation>
    // unless it already holds exactly that.
    Result<std::shared_ptr<Workspace>> local_copy(const std::string& handle, const std::string& dir,
                                                  unsigned long generation);
    Result<std::string> create_shared(const std::string& principal_hash);
    Status remove_shared(const std::string& handle, const std::string& principal_hash);
    // Drops a shared workspace's local copy (it was removed or expired).
    void forget_copy(const std::string& handle);
    std::size_t sweep_local();
    std::size_t sweep_shared();

    WorkspaceManager& local_;
    WorkspaceStoreKind kind_;
    SharedStoreOptions shared_;
    std::mutex mutex_;
    std::map<std::string, LocalHandle> handles_;  // the local store's
    // A shared workspace's local copy (WorkspaceManager id "w<handle>") and
    // the published generation it holds, while it holds one unchanged.
    struct CopyState {
        std::weak_ptr<Workspace> ws;
        unsigned long generation = 0;
    };
    std::map<std::string, CopyState> copies_;
    std::jthread sweeper_;                        // last: stops before the rest goes
};

// Copies a tree between two directory descriptors without following any
// symlink (links are copied as links); FIFOs, sockets and devices are left
// out. Files become `owner`'s, set-id bits dropped. Fails without finishing
// when the copy would pass `limit` (bytes or inodes) or 256 levels.
Result<TreeUsage> copy_tree(int from_fd, int to_fd, wsfs::Owner owner, TreeUsage limit);

}  // namespace kiln::tools
