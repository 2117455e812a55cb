#include "tools/workspace_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <ctime>
#include <vector>

#include "common/hash.hpp"
#include "common/units.hpp"

namespace kiln::tools {
namespace {

constexpr int kMaxTreeDepth = 256;
// A half-made or half-removed workspace without a lock file is left this
// long, so that its maker, between mkdir and creating the lock, is not raced.
constexpr std::chrono::seconds kStagingGrace{60};

std::string hex(const unsigned char* bytes, std::size_t n) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        out += digits[bytes[i] >> 4];
        out += digits[bytes[i] & 15];
    }
    return out;
}

std::string random_hex(std::size_t bytes) {
    unsigned char buf[32];
    std::size_t got = 0;
    while (got < bytes) {
        ssize_t n = ::getrandom(buf + got, bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        // getrandom(2) without GRND_NONBLOCK only fails on a bad buffer.
        if (n < 0) throw std::runtime_error(std::string("getrandom: ") + std::strerror(errno));
        got += static_cast<std::size_t>(n);
    }
    return hex(buf, bytes);
}

// What a workspace remembers of its principal: a hash, so the shared dir
// names no one.
std::string principal_hash(const std::string& principal) { return sha256_hex("kiln workspace principal\n" + principal); }

Status write_new_file(const std::string& path, const std::string& content) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return sys_error("create " + path);
    if (::write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size()))
        return sys_error("write " + path);
    if (::fsync(fd.get()) != 0) return sys_error("fsync " + path);
    return {};
}

Result<std::string> read_small_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return sys_error("open " + path);
    char buf[512];
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) return sys_error("read " + path);
    return std::string(buf, static_cast<std::size_t>(n));
}

std::vector<std::string> entries_of(int dir_fd) {
    std::vector<std::string> names;
    int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return names;
    DIR* d = ::fdopendir(fd);
    if (!d) {
        ::close(fd);
        return names;
    }
    while (struct dirent* e = ::readdir(d))
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    ::closedir(d);
    return names;
}

bool starts_with(const std::string& s, std::string_view prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

// ---- copy_tree ----

Status count(TreeUsage& used, const TreeUsage& limit, std::uint64_t bytes) {
    used.bytes += bytes;
    if (used.bytes > limit.bytes)
        return make_error("workspace quota", "the workspace holds more than " + format_size(limit.bytes) +
                                                 " (workspace.size); delete files to make room");
    if (used.inodes > limit.inodes)
        return make_error("workspace quota", "the workspace holds more than " + std::to_string(limit.inodes) +
                                                 " files, directories and links (workspace.max_files); delete some");
    return {};
}

Status copy_bytes(int in, int out, const std::string& name, TreeUsage& used, const TreeUsage& limit) {
    char buf[64 << 10];
    for (;;) {
        // copy_file_range(2) refuses between filesystems of different types
        // (tmpfs to NFS), the case here; plain reads and writes always work.
        ssize_t n = ::read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error("read " + name);
        if (n == 0) return {};
        if (Status st = count(used, limit, static_cast<std::uint64_t>(n)); !st) return st;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = ::write(out, buf + off, static_cast<std::size_t>(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) return sys_error("write " + name);
            off += w;
        }
    }
}

void give_to(int fd, wsfs::Owner owner, mode_t mode) {
    if (owner.uid != static_cast<uid_t>(-1)) (void)::fchown(fd, owner.uid, owner.gid);
    (void)::fchmod(fd, mode & 0777);  // no set-id bits cross into another filesystem
}

Status copy_entries(int from, int to, wsfs::Owner owner, const TreeUsage& limit, TreeUsage& used, int depth);

Status copy_entry(int from, int to, const std::string& name, wsfs::Owner owner, const TreeUsage& limit,
                  TreeUsage& used, int depth) {
    struct stat st {};
    if (::fstatat(from, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return sys_error("stat " + name);
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) return {};  // FIFOs, sockets
    ++used.inodes;
    if (S_ISLNK(st.st_mode)) {
        char target[4097];
        ssize_t n = ::readlinkat(from, name.c_str(), target, sizeof target - 1);
        if (n < 0) return sys_error("readlink " + name);
        target[n] = '\0';
        if (Status c = count(used, limit, static_cast<std::uint64_t>(n)); !c) return c;
        if (::symlinkat(target, to, name.c_str()) != 0) return sys_error("symlink " + name);
        if (owner.uid != static_cast<uid_t>(-1)) (void)::fchownat(to, name.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW);
        return {};
    }
    if (S_ISDIR(st.st_mode)) {
        if (depth >= kMaxTreeDepth)
            return make_error("workspace", "directories nest deeper than " + std::to_string(kMaxTreeDepth) +
                                               " levels at " + name + "; flatten the tree");
        if (Status c = count(used, limit, 0); !c) return c;
        if (::mkdirat(to, name.c_str(), 0700) != 0) return sys_error("mkdir " + name);
        UniqueFd in(::openat(from, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        UniqueFd out(::openat(to, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!in || !out) return sys_error("open directory " + name);
        if (Status s = copy_entries(in.get(), out.get(), owner, limit, used, depth + 1); !s) return s;
        give_to(out.get(), owner, st.st_mode);
        return {};
    }
    if (Status c = count(used, limit, 0); !c) return c;
    UniqueFd in(::openat(from, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!in) return sys_error("open " + name);
    UniqueFd out(::openat(to, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out) return sys_error("create " + name);
    if (Status s = copy_bytes(in.get(), out.get(), name, used, limit); !s) return s;
    give_to(out.get(), owner, st.st_mode);
    return {};
}

Status copy_entries(int from, int to, wsfs::Owner owner, const TreeUsage& limit, TreeUsage& used, int depth) {
    for (const auto& name : entries_of(from))
        if (Status st = copy_entry(from, to, name, owner, limit, used, depth); !st) return st;
    return {};
}

// ---- the shared layout ----
//   <dir>/<handle>/owner        the principal's hash, written once
//   <dir>/<handle>/lock         OFD-locked by the call using it; holds who
//                               ("<replica> <pid> <unix time>"); mtime = last use
//   <dir>/<handle>/current      symlink to tree-<n>: the published files
//   <dir>/<handle>/tree-<n>/
//   <dir>/.new-<handle>/        being created (locked by its maker)
//   <dir>/.gone-<handle>-<x>/   being removed (locked by its remover)

void note_holder(int lock_fd, const std::string& replica) {
    std::string who = replica + " " + std::to_string(::getpid()) + " " + std::to_string(::time(nullptr)) + "\n";
    if (::ftruncate(lock_fd, 0) == 0) (void)::pwrite(lock_fd, who.data(), who.size(), 0);
}

std::string holder_of(int lock_fd) {
    char buf[128] = {};
    ssize_t n = ::pread(lock_fd, buf, sizeof buf - 1, 0);
    std::string who(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    if (!who.empty() && who.back() == '\n') who.pop_back();
    return who.empty() ? "nobody recorded" : who;
}

Result<unsigned long> published_generation(const std::string& dir) {
    char target[64] = {};
    ssize_t n = ::readlink((dir + "/current").c_str(), target, sizeof target - 1);
    if (n < 0) return sys_error("readlink " + dir + "/current");
    std::string t(target, static_cast<std::size_t>(n));
    if (!starts_with(t, "tree-") || t.size() > 25 || t.find_first_not_of("0123456789", 5) != std::string::npos)
        return make_error("workspace", dir + "/current points at '" + t + "', not tree-<n>");
    return std::stoul(t.substr(5));
}

// Trees other than the published one: a holder died between writing a tree
// and publishing it (or between publishing and removing the old one). Only
// the lock holder calls this, so no one is writing them.
std::size_t remove_unpublished(const std::string& dir, unsigned long published, int lock_fd) {
    std::size_t removed = 0;
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return 0;
    for (const auto& name : entries_of(fd.get())) {
        bool stray = (starts_with(name, "tree-") && name != "tree-" + std::to_string(published)) || name == "current.new";
        if (!stray) continue;
        spdlog::info("workspace {}: removing {}, left unpublished by a holder that stopped ({} held it last)", dir, name,
                     holder_of(lock_fd));
        if (name == "current.new") (void)::unlinkat(fd.get(), name.c_str(), 0);
        else if (Status st = destroy_workspace_dir(dir + "/" + name); !st) spdlog::warn("{}", st.error().what());
        ++removed;
    }
    return removed;
}

// Renames the workspace aside (no call can find it from then on), then
// removes it; the caller holds its lock.
Status remove_locked(const std::string& root, const std::string& handle) {
    std::string gone = root + "/.gone-" + handle + "-" + random_hex(4);
    if (::rename((root + "/" + handle).c_str(), gone.c_str()) != 0) return sys_error("rename workspace " + handle);
    return destroy_workspace_dir(gone);
}

bool older_than(const struct stat& st, std::chrono::milliseconds age) {
    struct timespec now {};
    ::clock_gettime(CLOCK_REALTIME, &now);
    auto mtime_ms = std::int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1'000'000;
    auto now_ms = std::int64_t{now.tv_sec} * 1000 + now.tv_nsec / 1'000'000;
    return now_ms - mtime_ms > age.count();
}

}  // namespace

std::string new_workspace_handle() { return random_hex(16); }

nlohmann::json workspace_arg_schema() {
    return {{"type", "string"},
            {"pattern", "^[0-9a-f]{32}$"},
            {"description", "a handle from workspace_create: work in that workspace (on any replica) instead of "
                            "this session's own"}};
}

bool is_workspace_handle(std::string_view text) {
    return text.size() == 32 && text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

Result<TreeUsage> copy_tree(int from_fd, int to_fd, wsfs::Owner owner, TreeUsage limit) {
    TreeUsage used;
    if (Status st = copy_entries(from_fd, to_fd, owner, limit, used, 0); !st) return st.error();
    return used;
}

// ---- WorkspaceLock ----

namespace {
int set_ofd_lock(int fd) {
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    return ::fcntl(fd, F_OFD_SETLK, &fl);
}
}  // namespace

Result<std::optional<WorkspaceLock>> WorkspaceLock::try_acquire(const std::string& path, bool create) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | (create ? O_CREAT : 0) | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return sys_error("open lock " + path);
    if (set_ofd_lock(fd.get()) == 0) return std::optional<WorkspaceLock>(WorkspaceLock(std::move(fd)));
    if (errno == EAGAIN || errno == EACCES) return std::optional<WorkspaceLock>();
    return sys_error("lock " + path, "the shared directory must support POSIX locks (NFS: lockd or NFSv4)");
}

// F_OFD_SETLKW cannot time out, so the wait polls: the lock is held for one
// call, which is seconds, so 10 ms steps cost nothing that matters.
Result<WorkspaceLock> WorkspaceLock::acquire(const std::string& path, std::chrono::milliseconds wait) {
    auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        auto got = try_acquire(path);
        if (!got) return got.error();
        if (*got) return std::move(**got);
        if (std::chrono::steady_clock::now() >= deadline)
            return make_error("lock workspace", "another call has used this workspace for longer than " +
                                                    std::to_string(wait.count() / 1000) +
                                                    " s (workspace.queue_wait); retry when it ends");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

bool WorkspaceLock::still_at(const std::string& path) const {
    struct stat held {}, named {};
    if (::fstat(fd_.get(), &held) != 0 || ::stat(path.c_str(), &named) != 0) return false;
    return held.st_nlink > 0 && held.st_ino == named.st_ino && held.st_dev == named.st_dev;
}

// ---- WorkspaceUse ----

struct WorkspaceUse::Shared {
    std::string dir;
    WorkspaceLock lock;
    unsigned long generation;
    TreeUsage limit;
    // The local copy holds tree-<generation> exactly: true after a read, or
    // after a write once committed.
    bool in_sync;
    // Told at the end whether the copy may be reused, and at which generation.
    std::function<void(bool in_sync, unsigned long generation)> done;
};

WorkspaceUse::WorkspaceUse(std::shared_ptr<Workspace> ws, std::unique_ptr<Shared> shared)
    : ws_(std::move(ws)), shared_(std::move(shared)) {}
WorkspaceUse::WorkspaceUse(WorkspaceUse&&) noexcept = default;
WorkspaceUse& WorkspaceUse::operator=(WorkspaceUse&&) noexcept = default;

WorkspaceUse::~WorkspaceUse() {
    if (!shared_) return;
    // The lock file's mtime is the workspace's last use, which idle expiry
    // reads on every replica.
    (void)::futimens(shared_->lock.fd(), nullptr);
    shared_->done(shared_->in_sync, shared_->generation);
    ws_.reset();
}

Status WorkspaceUse::commit() {
    ws_->touch();
    if (!shared_) return {};
    Shared& s = *shared_;
    const std::string name = "tree-" + std::to_string(s.generation + 1);
    const std::string tree = s.dir + "/" + name;
    if (::mkdir(tree.c_str(), 0700) != 0) return sys_error("mkdir " + tree);
    UniqueFd tree_fd(::open(tree.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!tree_fd) return sys_error("open " + tree);
    auto used = copy_tree(ws_->dir_fd(), tree_fd.get(), {}, s.limit);
    if (used && ::syncfs(tree_fd.get()) != 0) used = sys_error("syncfs " + tree);
    if (!used) {
        (void)destroy_workspace_dir(tree);
        return Error(used.error()).wrap("save the workspace (nothing was saved; it holds what it held before)");
    }
    // One rename publishes the new tree: a reader, or a replica that dies
    // here, sees the old tree or the new one, never a mixture.
    const std::string next = s.dir + "/current.new";
    (void)::unlink(next.c_str());
    if (::symlink(name.c_str(), next.c_str()) != 0) return sys_error("symlink " + next);
    if (::rename(next.c_str(), (s.dir + "/current").c_str()) != 0) return sys_error("publish " + tree);
    if (UniqueFd dir(::open(s.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dir) (void)::fsync(dir.get());
    if (Status st = destroy_workspace_dir(s.dir + "/tree-" + std::to_string(s.generation)); !st)
        spdlog::warn("old tree of {} not removed (the next holder will): {}", s.dir, st.error().what());
    ++s.generation;
    s.in_sync = true;
    return {};
}

// ---- WorkspaceStore ----

WorkspaceStore::WorkspaceStore(WorkspaceManager& local, WorkspaceStoreKind kind, SharedStoreOptions shared)
    : local_(local), kind_(kind), shared_(std::move(shared)) {}

WorkspaceStore::~WorkspaceStore() {
    if (sweeper_.joinable()) {
        sweeper_.request_stop();
        sweeper_.join();
    }
    std::lock_guard lock(mutex_);
    for (const auto& [handle, h] : handles_) local_.release("h" + handle);
}

Error WorkspaceStore::not_found(const std::string& handle) {
    return make_error("workspace", "no workspace " + handle +
                                       " for this principal (unknown, expired, deleted, or made by another "
                                       "principal); create one with workspace_create");
}

Status WorkspaceStore::prepare() {
    if (kind_ == WorkspaceStoreKind::Local) return {};
    if (Status st = make_private_dirs(shared_.dir); !st) return st;
    // One probe: a shared dir without POSIX locks would let two replicas
    // write one workspace at once, so the store refuses to start on it.
    auto probe = WorkspaceLock::try_acquire(shared_.dir + "/.lock-probe");
    if (!probe) return Error(probe.error()).wrap("workspace.shared_dir " + shared_.dir);
    return {};
}

Result<std::string> WorkspaceStore::create(const std::string& principal) {
    const std::string hash = principal_hash(principal);
    switch (kind_) {
        case WorkspaceStoreKind::Local: {
            std::string handle = new_workspace_handle();
            auto ws = local_.acquire("h" + handle);
            if (!ws) return ws.error();
            std::lock_guard lock(mutex_);
            handles_[handle] = {hash, *ws};
            return handle;
        }
        case WorkspaceStoreKind::Shared: return create_shared(hash);
    }
    return make_error("workspace", "unknown store");
}

// Made under .new-<handle>, locked by its maker, then renamed into place:
// a workspace is either complete or not there.
Result<std::string> WorkspaceStore::create_shared(const std::string& principal_hash) {
    const std::string handle = new_workspace_handle();
    const std::string stage = shared_.dir + "/.new-" + handle;
    if (::mkdir(stage.c_str(), 0700) != 0) return sys_error("mkdir " + stage);
    auto lock = WorkspaceLock::acquire(stage + "/lock", std::chrono::milliseconds(0));
    if (!lock) return lock.error();
    note_holder(lock->fd(), shared_.replica_id);
    if (Status st = write_new_file(stage + "/owner", principal_hash); !st) return st.error();
    if (::mkdir((stage + "/tree-0").c_str(), 0700) != 0) return sys_error("mkdir " + stage + "/tree-0");
    if (::symlink("tree-0", (stage + "/current").c_str()) != 0) return sys_error("symlink " + stage + "/current");
    if (UniqueFd dir(::open(stage.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dir) (void)::fsync(dir.get());
    if (::rename(stage.c_str(), (shared_.dir + "/" + handle).c_str()) != 0) return sys_error("publish workspace " + handle);
    return handle;
}

Status WorkspaceStore::remove(const std::string& handle, const std::string& principal) {
    if (!is_workspace_handle(handle)) return not_found(handle);
    const std::string hash = principal_hash(principal);
    switch (kind_) {
        case WorkspaceStoreKind::Local: {
            std::lock_guard lock(mutex_);
            auto it = handles_.find(handle);
            if (it == handles_.end() || it->second.principal_hash != hash) return not_found(handle);
            handles_.erase(it);
            local_.release("h" + handle);
            return {};
        }
        case WorkspaceStoreKind::Shared: return remove_shared(handle, hash);
    }
    return {};
}

Status WorkspaceStore::remove_shared(const std::string& handle, const std::string& principal_hash) {
    const std::string dir = shared_.dir + "/" + handle;
    auto owner = read_small_file(dir + "/owner");
    if (!owner || *owner != principal_hash) return not_found(handle);
    auto lock = WorkspaceLock::acquire(dir + "/lock", shared_.lock_wait);
    if (!lock) return lock.error().err == ENOENT ? not_found(handle) : lock.error();  // removed meanwhile
    if (!lock->still_at(dir + "/lock")) return not_found(handle);
    forget_copy(handle);
    return remove_locked(shared_.dir, handle);
}

Result<WorkspaceUse> WorkspaceStore::open(const std::string& session_id, const std::string& principal,
                                          const std::string& handle, WorkspaceAccess access) {
    if (handle.empty()) {
        auto ws = local_.acquire(session_id);
        if (!ws) return ws.error();
        return WorkspaceUse(*ws, nullptr);
    }
    if (!is_workspace_handle(handle)) return not_found(handle);
    switch (kind_) {
        case WorkspaceStoreKind::Local: return open_local(handle, principal_hash(principal));
        case WorkspaceStoreKind::Shared: return open_shared(handle, principal_hash(principal), access);
    }
    return not_found(handle);
}

Result<WorkspaceUse> WorkspaceStore::open_local(const std::string& handle, const std::string& principal_hash) {
    std::lock_guard lock(mutex_);
    auto it = handles_.find(handle);
    if (it == handles_.end() || it->second.principal_hash != principal_hash) return not_found(handle);
    it->second.ws->touch();
    return WorkspaceUse(it->second.ws, nullptr);
}

// The owner is checked before the lock is taken, so no caller can hold up
// another principal's workspace by naming it.
Result<WorkspaceUse> WorkspaceStore::open_shared(const std::string& handle, const std::string& principal_hash,
                                                 WorkspaceAccess access) {
    const std::string dir = shared_.dir + "/" + handle;
    auto owner = read_small_file(dir + "/owner");
    if (!owner || *owner != principal_hash) return not_found(handle);
    auto lock = WorkspaceLock::acquire(dir + "/lock", shared_.lock_wait);
    if (!lock) return lock.error().err == ENOENT ? not_found(handle) : lock.error();  // removed meanwhile
    if (!lock->still_at(dir + "/lock")) return not_found(handle);  // removed while we waited
    note_holder(lock->fd(), shared_.replica_id);
    auto generation = published_generation(dir);
    if (!generation) return generation.error();
    remove_unpublished(dir, *generation, lock->fd());
    auto ws = local_copy(handle, dir, *generation);
    if (!ws) return ws.error();
    std::weak_ptr<Workspace> copy = *ws;
    auto done = [this, handle, copy](bool in_sync, unsigned long gen) {
        std::lock_guard g(mutex_);
        if (in_sync) copies_[handle] = {copy, gen};
        else copies_.erase(handle);
    };
    return WorkspaceUse(*ws, std::make_unique<WorkspaceUse::Shared>(WorkspaceUse::Shared{
                                 dir, std::move(*lock), *generation, {shared_.max_bytes, shared_.max_inodes},
                                 access == WorkspaceAccess::Read, std::move(done)}));
}

// Copying in is most of a shared workspace's cost per call; the copy is
// reused (with its tmpfs, memory group and network namespace) while it
// holds the published tree. The caller holds the workspace's lock, so no
// other call of this replica uses the copy meanwhile.
Result<std::shared_ptr<Workspace>> WorkspaceStore::local_copy(const std::string& handle, const std::string& dir,
                                                              unsigned long generation) {
    auto ws = local_.acquire("w" + handle);
    if (!ws) return ws.error();
    {
        std::lock_guard g(mutex_);
        auto it = copies_.find(handle);
        bool current = it != copies_.end() && it->second.ws.lock() == *ws && it->second.generation == generation;
        copies_.erase(handle);
        if (current) return ws;
    }
    if (Status st = wsfs::remove_contents((*ws)->dir_fd()); !st) return st.error();
    const std::string tree = dir + "/tree-" + std::to_string(generation);
    UniqueFd tree_fd(::open(tree.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!tree_fd) return sys_error("open " + tree);
    wsfs::Owner owner{(*ws)->owner_uid(), (*ws)->owner_gid()};
    if (auto copied = copy_tree(tree_fd.get(), (*ws)->dir_fd(), owner, {shared_.max_bytes, shared_.max_inodes}); !copied)
        return Error(copied.error()).wrap("copy workspace " + handle + " in");
    return ws;
}

void WorkspaceStore::forget_copy(const std::string& handle) {
    {
        std::lock_guard g(mutex_);
        copies_.erase(handle);
    }
    local_.release("w" + handle);
}

std::size_t WorkspaceStore::sweep() {
    switch (kind_) {
        case WorkspaceStoreKind::Local: return sweep_local();
        case WorkspaceStoreKind::Shared: return sweep_shared();
    }
    return 0;
}

std::size_t WorkspaceStore::sweep_local() {
    std::vector<std::string> doomed;
    auto now = std::chrono::steady_clock::now();
    {
        std::lock_guard lock(mutex_);
        for (auto it = handles_.begin(); it != handles_.end();) {
            // Held by this map and the manager only: no call is using it.
            bool idle = it->second.ws.use_count() <= 2 && now - it->second.ws->last_used() > shared_.idle_ttl;
            if (idle) {
                doomed.push_back(it->first);
                it = handles_.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (const auto& handle : doomed) local_.release("h" + handle);
    return doomed.size();
}

// Every replica sweeps the whole dir; the lock decides who acts, so two
// sweepers, or a sweeper and a call, never act on one workspace at once.
std::size_t WorkspaceStore::sweep_shared() {
    std::size_t removed = 0;
    UniqueFd root(::open(shared_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root) return 0;
    for (const auto& name : entries_of(root.get())) {
        const std::string dir = shared_.dir + "/" + name;
        bool staging = starts_with(name, ".new-") || starts_with(name, ".gone-");
        if (!staging && !is_workspace_handle(name)) continue;
        struct stat lock_st {};
        if (::stat((dir + "/lock").c_str(), &lock_st) != 0) {
            struct stat dir_st {};
            if (staging && ::stat(dir.c_str(), &dir_st) == 0 && older_than(dir_st, kStagingGrace))
                (void)destroy_workspace_dir(dir);
            continue;
        }
        auto lock = WorkspaceLock::try_acquire(dir + "/lock", false);
        if (!lock || !*lock || !(*lock)->still_at(dir + "/lock")) continue;  // in use: its holder is alive
        if (staging) {
            spdlog::info("removing {}, left by a replica that stopped ({} held it last)", dir, holder_of((*lock)->fd()));
            (void)destroy_workspace_dir(dir);
            continue;
        }
        auto generation = published_generation(dir);
        if (generation) remove_unpublished(dir, *generation, (*lock)->fd());
        struct stat held {};
        if (::fstat((*lock)->fd(), &held) == 0 && older_than(held, shared_.idle_ttl)) {
            forget_copy(name);
            if (Status st = remove_locked(shared_.dir, name); !st)
                spdlog::warn("idle workspace {} not removed: {}", name, st.error().what());
            else
                ++removed;
        }
    }
    return removed;
}

void WorkspaceStore::start_sweeper(std::chrono::milliseconds interval) {
    sweeper_ = run_every(interval, [this] {
        if (std::size_t n = sweep(); n > 0) spdlog::info("removed {} idle explicit workspace(s)", n);
    });
}

}  // namespace kiln::tools
