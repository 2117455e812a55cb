// cgroup v2: one unified hierarchy. Kiln needs a subtree it may write
// (root, or a delegated subtree for a rootless server) whose
// cgroup.controllers offers memory and pids (cpu is used when present).
//
// The "no internal processes" rule: a group with processes cannot enable
// controllers for its children. When the server's own group is such a group,
// the server moves itself into a leaf "kiln-server" beside the jails'
// subtree, the way nsjail does, and then enables the controllers.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <thread>

#include "common/unique_fd.hpp"
#include "sandbox/cgroup.hpp"

namespace kiln::sandbox::cgroup {
namespace {

std::string find_v2_mount(const HostView& host) {
    std::istringstream mounts(host.mounts);
    std::string fallback;
    for (std::string line; std::getline(mounts, line);) {
        std::istringstream in(line);
        std::string dev, dir, type;
        in >> dev >> dir >> type;
        if (type != "cgroup2") continue;
        if (dir == "/sys/fs/cgroup") return dir;
        if (fallback.empty()) fallback = dir;
    }
    return fallback;
}

std::string own_v2_path(const HostView& host) {
    std::istringstream cg(host.own_cgroups);
    for (std::string line; std::getline(cg, line);)
        if (line.rfind("0::", 0) == 0) return line.substr(3);
    return "/";
}

std::vector<std::string> words(const std::string& text) {
    std::istringstream in(text);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

Status enable_controllers(const std::string& dir, const std::vector<std::string>& controllers) {
    if (controllers.empty()) return {};
    std::string text;
    for (const auto& c : controllers) text += (text.empty() ? "+" : " +") + c;
    return write_text(dir + "/cgroup.subtree_control", text);
}

class V2Group final : public Group {
public:
    V2Group(std::string dir, std::vector<std::string> controllers)
        : dir_(std::move(dir)), controllers_(std::move(controllers)) {}
    ~V2Group() override { (void)remove(); }

    Status add(pid_t pid) override { return write_text(dir_ + "/cgroup.procs", std::to_string(pid)); }

    // clone3(CLONE_INTO_CGROUP): the child is born in the group, so no
    // migration and none of its global locking (see cgroup_v1.cpp). Kernels
    // before 5.7 lack it; they get the plain clone and add().
    Result<pid_t> spawn_inside(const SpawnFn& spawn) override {
        UniqueFd dir(::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!dir) return sys_error("open " + dir_);
        Entry entry;
        entry.cgroup_fd = dir.get();
        pid_t pid = spawn(entry);
        if (pid >= 0) return pid;
        if (errno != ENOSYS && errno != E2BIG) return sys_error("clone3", "CLONE_INTO_CGROUP " + dir_);
        return Group::spawn_inside(spawn);
    }

    Stats stats() const override {
        Stats s;
        if (contains(controllers_, "memory")) {
            if (auto t = read_text(dir_ + "/memory.peak")) s.peak_memory_bytes = std::stoull(*t);
            if (auto t = read_text(dir_ + "/memory.current")) s.memory_bytes = std::stoull(*t);
            if (auto t = read_text(dir_ + "/memory.events")) {
                auto pos = t->find("oom_kill ");
                if (pos != std::string::npos) s.oom_killed = std::stoull(t->substr(pos + 9)) > 0;
            }
        }
        // cpu.stat exists with or without the cpu controller.
        if (auto t = read_text(dir_ + "/cpu.stat")) {
            auto pos = t->find("usage_usec ");
            if (pos != std::string::npos) {
                s.cpu = std::chrono::microseconds(std::stoull(t->substr(pos + 11)));
                s.have_cpu = true;
            }
        }
        return s;
    }

    void kill_all() override {
        // cgroup.kill (Linux 5.14) kills every process, including ones forked
        // while the kill is under way; fall back to a kill loop before that.
        if (!write_text(dir_ + "/cgroup.kill", "1")) {
            kill_procs_in(dir_ + "/cgroup.procs");
            return;
        }
        for (int i = 0; i < 1000; ++i) {
            auto events = read_text(dir_ + "/cgroup.events");
            if (!events || events->find("populated 0") != std::string::npos) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }

    Status remove() override {
        if (removed_) return {};
        kill_all();
        removed_ = true;
        return remove_dir(dir_);
    }

    const std::string& dir() const { return dir_; }

private:
    std::string dir_;
    std::vector<std::string> controllers_;
    bool removed_ = false;
};

class V2Manager final : public Manager {
public:
    V2Manager(std::string server_dir, std::vector<std::string> controllers)
        : server_dir_(std::move(server_dir)), controllers_(std::move(controllers)) {}
    ~V2Manager() override { ::rmdir(server_dir_.c_str()); }

    std::string kind() const override { return "v2"; }
    std::string root() const override { return server_dir_; }

    Result<std::unique_ptr<Group>> create(const std::string& run_id, const Limits& limits) override {
        std::string dir = server_dir_ + "/" + run_id;
        if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return sys_error("mkdir " + dir);
        auto group = std::make_unique<V2Group>(dir, controllers_);
        if (Status st = apply_limits(dir, limits); !st) return st.error();
        return std::unique_ptr<Group>(std::move(group));
    }

    Result<std::unique_ptr<Group>> create_parent(const std::string& name, std::uint64_t memory_bytes) override {
        std::string dir = server_dir_ + "/" + name;
        if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return sys_error("mkdir " + dir);
        auto group = std::make_unique<V2Group>(dir, controllers_);
        // Its runs' groups get the same controllers from it.
        if (Status st = enable_controllers(dir, controllers_); !st) return st.error();
        if (Status st = limit_memory(dir, memory_bytes); !st) return st.error();
        return std::unique_ptr<Group>(std::move(group));
    }

private:
    Status limit_memory(const std::string& dir, std::uint64_t memory_bytes) const {
        if (!contains(controllers_, "memory")) return {};
        if (Status st = write_text(dir + "/memory.max", std::to_string(memory_bytes)); !st) return st;
        // No swap; the file is absent when the kernel has no swap accounting.
        if (::access((dir + "/memory.swap.max").c_str(), F_OK) == 0)
            if (Status st = write_text(dir + "/memory.swap.max", "0"); !st) return st;
        return {};
    }

    Status apply_limits(const std::string& dir, const Limits& limits) const {
        if (Status st = limit_memory(dir, limits.memory_bytes); !st) return st;
        if (contains(controllers_, "pids"))
            if (Status st = write_text(dir + "/pids.max", std::to_string(limits.pids)); !st) return st;
        if (contains(controllers_, "cpu")) {
            long quota = std::max(1000L, std::lround(limits.cpus * 100000.0));
            if (Status st = write_text(dir + "/cpu.max", std::to_string(quota) + " 100000"); !st) return st;
        }
        return {};
    }

    std::string server_dir_;
    std::vector<std::string> controllers_;
};

// Makes `base` able to hand `controllers` to children, moving the server
// into a leaf when base has processes.
Status prepare_base(const std::string& base, const std::vector<std::string>& controllers) {
    Status st = enable_controllers(base, controllers);
    if (st || st.error().err != EBUSY) return st;
    std::string leaf = base + "/kiln-server";
    if (::mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST) return sys_error("mkdir " + leaf);
    if (Status mv = write_text(leaf + "/cgroup.procs", "0"); !mv)
        return mv.error().wrap("moving the server out of " + base + " so it can delegate controllers");
    return enable_controllers(base, controllers);
}

}  // namespace

Result<std::unique_ptr<Manager>> open_v2_at(const std::string& base_dir, std::vector<std::string> controllers) {
    auto available = read_text(base_dir + "/cgroup.controllers");
    if (!available) return available.error().wrap("cgroup v2 at " + base_dir);
    return open_v2_at(base_dir, std::move(controllers), *available);
}

Result<std::unique_ptr<Manager>> open_v2_at(const std::string& base_dir, std::vector<std::string> controllers,
                                            const std::string& available) {
    for (const auto& c : controllers)
        if (!contains(words(available), c))
            return make_error("cgroup v2 " + base_dir, "controller '" + c + "' is not available here (cgroup.controllers: '" +
                                  available + "'); it may be bound to a v1 hierarchy", ENOTSUP);
    if (::access((base_dir + "/cgroup.procs").c_str(), W_OK) != 0)
        return sys_error("cgroup v2 " + base_dir, "not writable: run as root or ask systemd for a delegated subtree (Delegate=yes)");
    if (Status st = prepare_base(base_dir, controllers); !st) return st.error();
    std::string kiln = base_dir + "/kiln";
    if (::mkdir(kiln.c_str(), 0755) != 0 && errno != EEXIST) return sys_error("mkdir " + kiln);
    if (Status st = enable_controllers(kiln, controllers); !st) return st.error();
    std::string server = kiln + "/" + std::to_string(::getpid());
    if (::mkdir(server.c_str(), 0755) != 0 && errno != EEXIST) return sys_error("mkdir " + server);
    if (Status st = enable_controllers(server, controllers); !st) return st.error();
    return std::unique_ptr<Manager>(new V2Manager(server, std::move(controllers)));
}

Result<std::unique_ptr<Manager>> open_v2(const HostView& host) {
    std::string mount = find_v2_mount(host);
    if (mount.empty()) return make_error("cgroup v2", "no cgroup2 hierarchy mounted", ENOENT);
    std::string own = own_v2_path(host);
    std::string base = mount + (own == "/" ? "" : own);
    auto available = read_text(base + "/cgroup.controllers");
    if (!available) return available.error().wrap("cgroup v2");
    std::vector<std::string> wanted = {"memory", "pids"};
    if (contains(words(*available), "cpu")) wanted.push_back("cpu");
    return open_v2_at(base, wanted, *available);
}

Status reap_stale_v2() {
    HostView host = HostView::read();
    std::string mount = find_v2_mount(host);
    if (mount.empty()) return {};
    std::string own = own_v2_path(host);
    reap_stale_in(mount + (own == "/" ? "" : own) + "/kiln");
    if (own != "/") reap_stale_in(mount + "/kiln");
    return {};
}

Status reap_stale() {
    if (Status st = reap_stale_v1(); !st) return st;
    return reap_stale_v2();
}

}  // namespace kiln::sandbox::cgroup
