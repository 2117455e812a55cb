#include "tools/workspace.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <vector>

#include "tools/workspace_fs.hpp"

namespace kiln::tools {
namespace {

// Session ids come from the transport (HTTP clients choose none of it, but
// be strict anyway): they become directory names.
bool safe_name(const std::string& id) {
    if (id.empty() || id.size() > 128) return false;
    for (char c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
    return true;
}

Status make_dir_private(const std::string& path) {
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return sys_error("mkdir " + path);
    return {};
}

Status make_dirs(const std::string& path) {
    std::string partial;
    for (std::size_t pos = 1; pos != std::string::npos;) {
        pos = path.find('/', pos);
        partial = path.substr(0, pos);
        if (pos != std::string::npos) ++pos;
        if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) return sys_error("mkdir " + partial);
    }
    return {};
}

}  // namespace

Status make_private_dirs(const std::string& path) { return make_dirs(path); }

namespace {

bool is_mountpoint(const std::string& path) {
    struct stat self {}, parent {};
    if (::stat(path.c_str(), &self) != 0) return false;
    if (::stat((path + "/..").c_str(), &parent) != 0) return false;
    return self.st_dev != parent.st_dev;
}

}  // namespace

std::optional<unsigned> HostIdPool::take() {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < used_.size(); ++i) {
        if (used_[i]) continue;
        used_[i] = true;
        return base_ + static_cast<unsigned>(i);
    }
    return std::nullopt;
}

void HostIdPool::give_back(unsigned id) {
    std::lock_guard lock(mutex_);
    if (id >= base_ && id - base_ < used_.size()) used_[id - base_] = false;
}

Workspace::Workspace(std::string path, UniqueFd dir_fd, bool ram_backed, std::uint64_t quota, bool session_network,
                     std::unique_ptr<sandbox::RunGroup> group, Owner owner)
    : path_(std::move(path)),
      dir_fd_(std::move(dir_fd)),
      ram_backed_(ram_backed),
      quota_(quota),
      session_network_(session_network),
      group_(std::move(group)),
      owner_(std::move(owner)),
      last_used_(std::chrono::steady_clock::now()) {}

Workspace::~Workspace() {
    dir_fd_.reset();
    if (Status st = destroy_workspace_dir(path_); !st)
        spdlog::error("workspace {} not fully removed: {}", path_, st.error().what());
    // Its files are gone (or leaked and logged): the ids may serve another session.
    if (owner_.pool) owner_.pool->give_back(owner_.uid);
}

std::chrono::steady_clock::time_point Workspace::last_used() const {
    std::lock_guard lock(mutex_);
    return last_used_;
}

void Workspace::touch() {
    std::lock_guard lock(mutex_);
    last_used_ = std::chrono::steady_clock::now();
}

int Workspace::network_fd() {
    std::lock_guard lock(mutex_);
    if (!session_network_) return -1;
    if (!network_) {
        auto made = sandbox::net::Namespace::create();
        if (!made) {
            spdlog::warn("workspace {}: no session network namespace, each run makes its own: {}", path_,
                         made.error().what());
            session_network_ = false;
            return -1;
        }
        network_ = std::move(*made);
    }
    return network_->fd();
}

Status Workspace::reset() {
    touch();
    return wsfs::remove_contents(dir_fd_.get());
}

Status destroy_workspace_dir(const std::string& path) {
    if (is_mountpoint(path) && ::umount2(path.c_str(), MNT_DETACH) != 0)
        return sys_error("unmount workspace " + path);
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? Status{} : sys_error("open workspace " + path);
    UniqueFd guard(fd);
    if (Status st = wsfs::remove_contents(fd); !st) return st;
    if (::rmdir(path.c_str()) != 0) return sys_error("rmdir " + path);
    return {};
}

WorkspaceManager::WorkspaceManager(WorkspaceOptions options) : options_(std::move(options)) {}

WorkspaceManager::~WorkspaceManager() {
    if (reaper_.joinable()) {
        reaper_.request_stop();
        reaper_.join();
    }
    {
        std::lock_guard lock(mutex_);
        live_.clear();
    }
    (void)::rmdir(options_.root_dir.c_str());  // only if empty: a run may still hold one
}

namespace {

std::vector<std::string> names_in(int dir_fd) {
    std::vector<std::string> names;
    int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return names;
    if (DIR* d = ::fdopendir(fd)) {
        while (struct dirent* e = ::readdir(d))
            if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
        ::closedir(d);
    } else {
        ::close(fd);
    }
    return names;
}

bool belongs_to_live_server(const std::string& name) {
    bool numeric = !name.empty() && name.size() < 10 && name.find_first_not_of("0123456789") == std::string::npos;
    if (!numeric) return false;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    return pid != ::getpid() && (::kill(pid, 0) == 0 || errno == EPERM);
}

// Removes <parent>/<name> of a server that is gone, with each workspace in
// it (each may be a mounted tmpfs: unmounted before deleting).
Status remove_leftover(const std::string& path) {
    if (is_mountpoint(path)) (void)::umount2(path.c_str(), MNT_DETACH);
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? Status{} : sys_error("open " + path);
    UniqueFd guard(fd);
    for (const auto& w : names_in(fd))
        if (Status st = destroy_workspace_dir(path + "/" + w); !st) return st;
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) return sys_error("rmdir " + path);
    return {};
}

// A leftover the server cannot remove (an immutable file, a mount that
// stays busy, a file it has no permission for) is renamed aside, once, and
// left to the operator: a server that refused to start over it could not
// be restarted until someone cleaned up by hand.
void set_aside(const std::string& path, const Error& why) {
    if (path.find(".stale-") != std::string::npos) {
        spdlog::warn("leftover workspaces {} still cannot be removed ({}); left in place for the operator", path,
                     why.what());
        return;
    }
    std::string aside = path + ".stale-" + std::to_string(::time(nullptr));
    if (::rename(path.c_str(), aside.c_str()) == 0)
        spdlog::warn("leftover workspaces {} cannot be removed ({}); moved to {}, remove it by hand", path, why.what(),
                     aside);
    else
        spdlog::warn("leftover workspaces {} cannot be removed ({}) nor moved aside ({}); carrying on", path,
                     why.what(), std::strerror(errno));
}

}  // namespace

// Each server keeps its workspaces under <root_dir>/<pid>, so several
// servers can share one state dir; a directory whose pid is gone belongs to
// a server that crashed, and is removed (or set aside, if it cannot be).
Status WorkspaceManager::remove_leftovers() {
    std::string parent = options_.root_dir.substr(0, options_.root_dir.rfind('/'));
    if (Status st = make_dirs(parent); !st) return st;
    int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return sys_error("open " + parent);
    UniqueFd guard(fd);
    for (const auto& n : names_in(fd)) {
        if (belongs_to_live_server(n)) continue;
        std::string path = parent + "/" + n;
        spdlog::info("removing leftover workspaces {}", path);
        if (Status st = remove_leftover(path); !st) set_aside(path, st.error());
    }
    return make_dirs(options_.root_dir);
}

Result<std::shared_ptr<Workspace>> WorkspaceManager::create(const std::string& session_id) {
    if (!safe_name(session_id)) return make_error("create workspace", "invalid session id '" + session_id + "'");
    if (Status st = make_dirs(options_.root_dir); !st) return st.error();
    std::string path = options_.root_dir + "/" + session_id;
    if (Status st = make_dir_private(path); !st) return st.error();

    auto owner = take_owner();
    if (!owner) {
        (void)::rmdir(path.c_str());
        return owner.error();
    }
    auto ram_backed = mount_quota(path, *owner);
    if (!ram_backed) {
        (void)::rmdir(path.c_str());
        if (owner->pool) owner->pool->give_back(owner->uid);
        return ram_backed.error();
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        Error e = sys_error("open workspace " + path);
        (void)destroy_workspace_dir(path);
        if (owner->pool) owner->pool->give_back(owner->uid);
        return e;
    }
    UniqueFd dir_fd(fd);
    std::unique_ptr<sandbox::RunGroup> group;
    if (options_.runtime) {
        auto g = options_.runtime->make_group("session-" + session_id, options_.session_memory_bytes);
        if (!g) {
            (void)destroy_workspace_dir(path);
            if (owner->pool) owner->pool->give_back(owner->uid);
            return g.error().wrap("the session's memory group");
        }
        group = std::move(*g);
    }
    return std::make_shared<Workspace>(path, std::move(dir_fd), *ram_backed, *ram_backed ? options_.size_bytes : 0,
                                       options_.session_network, std::move(group), std::move(*owner));
}

Result<Workspace::Owner> WorkspaceManager::take_owner() {
    if (!options_.session_ids) return Workspace::Owner{options_.owner_uid, options_.owner_gid, nullptr};
    auto id = options_.session_ids->take();
    if (!id)
        return make_error("create workspace", "every host id of sandbox.host_ids is in use (workspaces still held by "
                                              "finishing runs); try again when a run ends");
    return Workspace::Owner{*id, *id, options_.session_ids};
}

// The workspace's bound: a tmpfs of size_bytes and max_files inodes (an
// inode costs kernel memory but no bytes of size). A rootless server can
// mount one when it runs in namespaces of its own (kiln serve makes them,
// sandbox/user.hpp); where it cannot, the workspace is a plain directory
// without a quota, and says so (false).
Result<bool> WorkspaceManager::mount_quota(const std::string& path, const Workspace::Owner& owner) {
    std::string data = "size=" + std::to_string(options_.size_bytes) + ",nr_inodes=" + std::to_string(options_.max_files) +
                       ",mode=0700,uid=" + std::to_string(owner.uid) + ",gid=" + std::to_string(owner.gid);
    if (::mount("kiln-workspace", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, data.c_str()) == 0) return true;
    if (::geteuid() == 0 || errno != EPERM)
        return sys_error("mount tmpfs workspace at " + path, "the workspace quota needs a tmpfs");
    if (!warned_unbounded_.exchange(true))
        spdlog::warn("workspaces are plain directories under {} with no size or file quota: this rootless server "
                     "cannot mount (start it with `kiln serve`, which makes namespaces of its own, on a host "
                     "that allows unprivileged user namespaces)", options_.root_dir);
    if (::chmod(path.c_str(), 0700) != 0) return sys_error("chmod " + path);
    return false;
}

Result<std::shared_ptr<Workspace>> WorkspaceManager::acquire(const std::string& session_id) {
    std::lock_guard lock(mutex_);
    if (auto it = live_.find(session_id); it != live_.end()) {
        it->second->touch();
        return it->second;
    }
    if (live_.size() >= options_.max_sessions)
        return make_error("create workspace", std::to_string(live_.size()) + " sessions already hold a workspace (limit " +
                                                  std::to_string(options_.max_sessions) +
                                                  ", workspace.max_sessions); try again when a session ends");
    auto ws = create(session_id);
    if (!ws) return ws.error();
    live_[session_id] = *ws;
    return *ws;
}

void WorkspaceManager::release(const std::string& session_id) {
    std::shared_ptr<Workspace> doomed;
    {
        std::lock_guard lock(mutex_);
        auto it = live_.find(session_id);
        if (it == live_.end()) return;
        doomed = std::move(it->second);
        live_.erase(it);
    }
    // The last shared_ptr (this one, or a run still holding it) destroys it.
}

std::size_t WorkspaceManager::reap_idle() {
    std::vector<std::shared_ptr<Workspace>> doomed;
    auto now = std::chrono::steady_clock::now();
    {
        std::lock_guard lock(mutex_);
        for (auto it = live_.begin(); it != live_.end();) {
            // use_count 1: only the map holds it, so no run is using it now.
            if (it->second.use_count() == 1 && now - it->second->last_used() > options_.idle_ttl) {
                doomed.push_back(std::move(it->second));
                it = live_.erase(it);
            } else {
                ++it;
            }
        }
    }
    return doomed.size();
}

std::jthread run_every(std::chrono::milliseconds interval, std::function<void()> fn) {
    return std::jthread([interval, fn = std::move(fn)](std::stop_token stop) {
        std::mutex m;
        std::condition_variable_any cv;
        while (!stop.stop_requested()) {
            std::unique_lock lock(m);
            if (cv.wait_for(lock, stop, interval, [] { return false; })) break;
            fn();
        }
    });
}

void WorkspaceManager::start_reaper(std::chrono::milliseconds interval) {
    reaper_ = run_every(interval, [this] {
        if (std::size_t n = reap_idle(); n > 0) spdlog::info("removed {} idle workspace(s)", n);
    });
}

std::size_t WorkspaceManager::count() const {
    std::lock_guard lock(mutex_);
    return live_.size();
}

}  // namespace kiln::tools
