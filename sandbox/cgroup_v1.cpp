// cgroup v1: one hierarchy per controller (memory, pids, cpu, cpuacct,
// possibly co-mounted). Each run gets a directory in every hierarchy.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "common/unique_fd.hpp"
#include "sandbox/cgroup.hpp"

namespace kiln::sandbox::cgroup {
namespace {

struct Hierarchy {
    std::string mount;        // e.g. /sys/fs/cgroup/memory
    std::string controllers;  // mount options naming the controllers
    std::string own_path;     // this process's cgroup in it
};

bool has_option(const std::string& options, const std::string& name) {
    std::istringstream in(options);
    std::string opt;
    while (std::getline(in, opt, ','))
        if (opt == name) return true;
    return false;
}

// controller name -> hierarchy, from /proc/self/mounts and /proc/self/cgroup.
std::map<std::string, Hierarchy> find_hierarchies(const HostView& host) {
    std::map<std::string, Hierarchy> found;
    std::map<std::string, std::string> own;  // controller list -> path
    std::istringstream cg(host.own_cgroups);
    for (std::string line; std::getline(cg, line);) {
        auto a = line.find(':'), b = line.find(':', a + 1);
        if (a == std::string::npos || b == std::string::npos) continue;
        own[line.substr(a + 1, b - a - 1)] = line.substr(b + 1);
    }
    std::istringstream mounts(host.mounts);
    for (std::string line; std::getline(mounts, line);) {
        std::istringstream in(line);
        std::string dev, dir, type, options;
        in >> dev >> dir >> type >> options;
        if (type != "cgroup") continue;
        for (const char* c : {"memory", "pids", "cpu", "cpuacct"}) {
            if (!has_option(options, c) || found.count(c)) continue;
            Hierarchy h{dir, options, "/"};
            for (const auto& [list, path] : own)
                if (has_option(list, c)) h.own_path = path;
            found[c] = h;
        }
    }
    return found;
}

std::string own_dir(const Hierarchy& h) { return h.mount + (h.own_path == "/" ? "" : h.own_path); }

std::string parent_of_server(const Hierarchy& h) {
    // Prefer our own cgroup (limits of the server's container then apply to
    // the jails too); fall back to the root when it is not writable.
    std::string own = own_dir(h);
    if (::access(own.c_str(), W_OK) == 0) return own + "/kiln";
    return h.mount + "/kiln";
}

// Directories per controller; co-mounted controllers (cpu,cpuacct) share one.
using Dirs = std::map<std::string, std::string>;

Dirs unique_dirs(const Dirs& dirs) {
    Dirs out;
    for (const auto& [ctrl, dir] : dirs)
        if (std::none_of(out.begin(), out.end(), [&](const auto& kv) { return kv.second == dir; })) out[ctrl] = dir;
    return out;
}

class V1Group final : public Group {
public:
    explicit V1Group(Dirs dirs) : dirs_(std::move(dirs)) {}
    ~V1Group() override { (void)remove(); }

    Status add(pid_t pid) override {
        for (const auto& [ctrl, dir] : unique_dirs(dirs_))
            if (Status st = write_text(dir + "/cgroup.procs", std::to_string(pid)); !st) return st;
        return {};
    }

    // Moving a process into a v1 group by pid write-locks the kernel's global
    // cgroup_threadgroup_rwsem, which waits for an RCU grace period whenever
    // no migration happened just before: 5-15 ms on an idle host, most of a
    // run's setup. A thread that moves itself (writes "0" to `tasks`) takes
    // no such lock. So the child moves itself, first thing after the clone
    // (join_self), through `tasks` files opened here: before it forks, execs
    // or allocates anything of its own. The server's threads never enter a
    // run's group, and the pids limit counts only the jail.
    Result<pid_t> spawn_inside(const SpawnFn& spawn) override {
        Entry entry;
        std::vector<UniqueFd> tasks;
        for (const auto& [ctrl, dir] : unique_dirs(dirs_)) {
            if (tasks.size() == Entry::kMaxTasksFds)
                return make_error("cgroup v1", "more hierarchies than a child can join", E2BIG);
            UniqueFd fd(::open((dir + "/tasks").c_str(), O_WRONLY | O_CLOEXEC));
            if (!fd) return sys_error("open " + dir + "/tasks");
            entry.tasks_fds[tasks.size()] = fd.get();
            tasks.push_back(std::move(fd));
        }
        pid_t pid = spawn(entry);
        if (pid < 0) return sys_error("clone");
        return pid;
    }

    Stats stats() const override {
        Stats s;
        if (auto it = dirs_.find("memory"); it != dirs_.end()) {
            if (auto t = read_text(it->second + "/memory.max_usage_in_bytes")) s.peak_memory_bytes = std::stoull(*t);
            if (auto t = read_text(it->second + "/memory.usage_in_bytes")) s.memory_bytes = std::stoull(*t);
            if (auto t = read_text(it->second + "/memory.oom_control")) {
                auto pos = t->find("oom_kill ");
                if (pos != std::string::npos) s.oom_killed = std::stoull(t->substr(pos + 9)) > 0;
            }
        }
        if (auto it = dirs_.find("cpuacct"); it != dirs_.end()) {
            if (auto t = read_text(it->second + "/cpuacct.usage")) {
                s.cpu = std::chrono::microseconds(std::stoull(*t) / 1000);
                s.have_cpu = true;
            }
        }
        return s;
    }

    void kill_all() override {
        for (const auto& [ctrl, dir] : unique_dirs(dirs_)) kill_procs_in(dir + "/cgroup.procs");
    }

    // A group usually is empty by now (the jail's init has been reaped, and
    // its pid namespace with it): rmdir alone then, and only a busy group is
    // searched for processes to kill.
    Status remove() override {
        if (removed_) return {};
        Status result;
        bool killed = false;
        for (const auto& [ctrl, dir] : unique_dirs(dirs_)) {
            if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) continue;
            if (!killed) kill_all();
            killed = true;
            if (Status st = remove_dir(dir); !st && result) result = st;
        }
        removed_ = true;
        return result;
    }

private:
    Dirs dirs_;
    bool removed_ = false;
};

class V1Manager final : public Manager {
public:
    V1Manager(Dirs server_dirs, bool single_run) : server_dirs_(std::move(server_dirs)), single_run_(single_run) {}
    ~V1Manager() override {
        if (single_run_ && used_) return;  // the run's group was the subtree and removed itself
        std::set<std::string> done;
        for (const auto& [ctrl, dir] : server_dirs_)
            if (done.insert(dir).second) ::rmdir(dir.c_str());
    }

    std::string kind() const override { return "v1"; }
    std::string root() const override { return server_dirs_.at("memory"); }

    Result<std::unique_ptr<Group>> create(const std::string& run_id, const Limits& limits) override {
        if (single_run_) return create_in_subtree(limits);
        std::map<std::string, std::string> dirs;
        for (const auto& [ctrl, base] : server_dirs_) {
            std::string dir = base + "/" + run_id;
            if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return sys_error("mkdir " + dir);
            dirs[ctrl] = dir;
        }
        auto group = std::make_unique<V1Group>(dirs);
        if (Status st = apply_limits(dirs, limits); !st) return st.error();
        return std::unique_ptr<Group>(std::move(group));
    }

    Result<std::unique_ptr<Group>> create_parent(const std::string& name, std::uint64_t memory_bytes) override {
        if (single_run_) return make_error("cgroup v1", "a single-run manager has no room for a parent group", EINVAL);
        Dirs dirs;
        for (const auto& [ctrl, base] : server_dirs_) {
            std::string dir = base + "/" + name;
            if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return sys_error("mkdir " + dir);
            dirs[ctrl] = dir;
        }
        auto group = std::make_unique<V1Group>(dirs);
        if (Status st = limit_memory(dirs.at("memory"), memory_bytes); !st) return st.error();
        return std::unique_ptr<Group>(std::move(group));
    }

private:
    Result<std::unique_ptr<Group>> create_in_subtree(const Limits& limits) {
        if (used_) return make_error("cgroup v1", "this manager runs a single run and has had it", EBUSY);
        used_ = true;
        auto group = std::make_unique<V1Group>(server_dirs_);
        if (Status st = apply_limits(server_dirs_, limits); !st) return st.error();
        return std::unique_ptr<Group>(std::move(group));
    }

    static Status limit_memory(const std::string& mem, std::uint64_t memory_bytes) {
        std::string bytes = std::to_string(memory_bytes);
        if (Status st = write_text(mem + "/memory.limit_in_bytes", bytes); !st) return st;
        // memory+swap equal to memory: no swap at all. Absent without swap accounting.
        if (::access((mem + "/memory.memsw.limit_in_bytes").c_str(), F_OK) == 0)
            if (Status st = write_text(mem + "/memory.memsw.limit_in_bytes", bytes); !st) return st;
        return {};
    }

    static Status apply_limits(const std::map<std::string, std::string>& dirs, const Limits& limits) {
        if (Status st = limit_memory(dirs.at("memory"), limits.memory_bytes); !st) return st;
        if (Status st = write_text(dirs.at("pids") + "/pids.max", std::to_string(limits.pids)); !st) return st;
        const std::string& cpu = dirs.at("cpu");
        long quota = std::max(1000L, std::lround(limits.cpus * 100000.0));
        if (Status st = write_text(cpu + "/cpu.cfs_period_us", "100000"); !st) return st;
        return write_text(cpu + "/cpu.cfs_quota_us", std::to_string(quota));
    }

    Dirs server_dirs_;
    bool single_run_, used_ = false;
};

}  // namespace

Result<std::unique_ptr<Manager>> open_v1(const HostView& host, bool single_run) {
    auto hierarchies = find_hierarchies(host);
    for (const char* c : {"memory", "pids", "cpu", "cpuacct"})
        if (!hierarchies.count(c))
            return make_error("cgroup v1", std::string("no '") + c + "' hierarchy mounted", ENOENT);
    Dirs server_dirs;
    for (const auto& [ctrl, h] : hierarchies) {
        std::string parent = parent_of_server(h);
        std::string dir = parent + "/" + std::to_string(::getpid());
        const std::string why = "cgroup v1 " + ctrl + " is not writable (run as root, or use a delegated cgroup v2)";
        auto make = [](const std::string& path) { return ::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST; };
        // kiln/ usually exists already: try the server's own directory first.
        if (!make(dir)) {
            if (errno != ENOENT) return sys_error("mkdir " + dir, why);
            if (!make(parent)) return sys_error("mkdir " + parent, why);
            if (!make(dir)) return sys_error("mkdir " + dir, why);
        }
        server_dirs[ctrl] = dir;
    }
    return std::unique_ptr<Manager>(new V1Manager(std::move(server_dirs), single_run));
}

namespace {

void reap_dir(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    std::vector<std::string> children;
    while (dirent* ent = ::readdir(d))
        if (ent->d_type == DT_DIR && ent->d_name[0] != '.') children.push_back(dir + "/" + ent->d_name);
    ::closedir(d);
    for (const auto& child : children) reap_dir(child);
    kill_procs_in(dir + "/cgroup.procs");
    (void)remove_dir(dir);
}

}  // namespace

// Subtrees are named after the server's pid; one whose server is gone is a
// leftover of a crash.
void reap_stale_in(const std::string& kiln_dir) {
    DIR* d = ::opendir(kiln_dir.c_str());
    if (!d) return;
    std::vector<std::string> stale;
    while (dirent* ent = ::readdir(d)) {
        if (ent->d_type != DT_DIR || ent->d_name[0] == '.') continue;
        char* end = nullptr;
        long pid = std::strtol(ent->d_name, &end, 10);
        if (*end != '\0' || pid <= 0) continue;
        if (pid != ::getpid() && !pid_alive(static_cast<pid_t>(pid))) stale.push_back(kiln_dir + "/" + ent->d_name);
    }
    ::closedir(d);
    for (const auto& dir : stale) reap_dir(dir);
}

Status reap_stale_v1() {
    for (const auto& [ctrl, h] : find_hierarchies(HostView::read())) reap_stale_in(parent_of_server(h));
    return {};
}

}  // namespace kiln::sandbox::cgroup
