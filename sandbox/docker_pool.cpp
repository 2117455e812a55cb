// Containers of the Docker runtime and their warm pool.
//
// Every control is set when the container is created (HostConfig), so a
// pooled container is already as confined as the run it will hold: what a
// run adds later is only its program (an exec), its code (files written
// into the container's read-only /kiln from the host) and its session's
// workspace (a host bind mount that propagates into /workspace).
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "sandbox/docker_internal.hpp"
#include "sandbox/seccomp_rules.hpp"

namespace kiln::sandbox::docker {
namespace {

using std::chrono::milliseconds;

std::atomic<unsigned long> next_container{0};

const char* seccomp_profile(SeccompProfile p) {
    switch (p) {
        case SeccompProfile::Default: return seccomp::kDockerProfileDefault;
        case SeccompProfile::Strict: return seccomp::kDockerProfileStrict;
    }
    return seccomp::kDockerProfileDefault;
}

json mounts_for(const Container& c, bool propagation) {
    json code = {{"Type", "bind"}, {"Source", c.code_dir()}, {"Target", "/kiln"}, {"ReadOnly", true}};
    json workspace = {{"Type", "bind"}, {"Target", "/workspace"}, {"ReadOnly", false}};
    if (!c.workspace.empty()) {
        workspace["Source"] = c.workspace;
    } else {
        workspace["Source"] = c.workspace_dir();
        // The session's workspace is mounted on the host onto Source when a
        // run claims the container; rslave carries that mount inside.
        if (propagation) workspace["BindOptions"] = {{"Propagation", "rslave"}};
    }
    return json::array({code, workspace});
}

// Docker's default masked paths, and /sys: the host's sysfs (devices,
// firmware, kernel settings), which the native jail does not mount either.
json masked_paths() {
    return json::array({"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys"});
}

// The container's whole configuration: C001 C002 C003 C006 C007 C009 C010 C012.
json create_body(const ContainerTemplate& t, const Container& c, const std::string& session) {
    const Limits& l = c.limits;
    std::vector<std::string> security = {"no-new-privileges", std::string("seccomp=") + seccomp_profile(c.seccomp)};
    if (t.apparmor) security.push_back("apparmor=docker-default");
    json host = {
        {"ReadonlyRootfs", true},
        {"Tmpfs", {{"/tmp", "rw,noexec,nosuid,nodev,mode=1777,size=" + std::to_string(l.tmp_size_bytes)}}},
        {"NetworkMode", "none"},
        {"Memory", l.memory_bytes},
        {"MemorySwap", l.memory_bytes},  // equal: no swap
        {"NanoCpus", static_cast<std::int64_t>(std::llround(l.cpus * 1e9))},
        {"PidsLimit", l.pids},
        {"CapDrop", json::array({"ALL"})},
        {"SecurityOpt", security},
        {"Mounts", mounts_for(c, t.workspace_by_propagation)},
        {"LogConfig", {{"Type", "none"}}},
        {"IpcMode", "private"},
        {"RestartPolicy", {{"Name", "no"}}},
        {"MaskedPaths", masked_paths()},
    };
    // pid 1 waits for the go line on the attached stdin, then sources the
    // run's script from /kiln (written by then), runs the program, and
    // waits again until Kiln has read the cgroup's figures (docker_exec.cpp).
    // No runc exec per run: that alone cost ~100 ms here.
    return {
        {"Image", t.image_id},
        {"Entrypoint", json::array({"/bin/sh", "-c", "read -r kiln_go && . /kiln/run.sh"})},
        {"Cmd", json::array()},
        {"User", std::to_string(c.uid) + ":" + std::to_string(c.gid)},
        {"WorkingDir", "/"},
        {"OpenStdin", true},
        {"StdinOnce", true},
        {"AttachStdin", true},
        {"AttachStdout", true},
        {"AttachStderr", true},
        {"Tty", false},
        {"NetworkDisabled", true},
        {"Labels", {{"kiln.managed", "true"}, {"kiln.server", t.server_id},
                    {"kiln.pid", std::to_string(::getpid())}, {"kiln.session", session}}},
        {"HostConfig", host},
    };
}

Status make_host_dirs(const Container& c) {
    for (const std::string& d : {c.host_dir, c.code_dir(), c.workspace_dir()})
        if (::mkdir(d.c_str(), 0755) != 0) return sys_error("mkdir " + d, "the container's host directory");
    return {};
}

void remove_host_dir(const Container& c) {
    ::umount2(c.workspace_dir().c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(c.host_dir, ec);
}

std::string api_error(const Response& r) {
    auto j = json::parse(r.body, nullptr, false);
    if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
    return r.body.substr(0, 300);
}

}  // namespace

std::string labels_filter(const std::string& server_id) {
    json labels = json::array({"kiln.managed=true"});
    if (!server_id.empty()) labels.push_back("kiln.server=" + server_id);
    return url_encode(json{{"label", labels}}.dump());
}

Result<Container> create_container(const Client& client, const ContainerTemplate& t, const ContainerShape& shape) {
    Container c;
    c.name = "kiln-" + t.server_id + "-" + std::to_string(next_container.fetch_add(1));
    c.host_dir = t.mounts_dir + "/" + c.name;
    c.limits = shape.limits;
    c.seccomp = shape.seccomp;
    c.uid = shape.uid;
    c.gid = shape.gid;
    c.workspace = shape.direct_workspace;
    const std::string& session = shape.session;
    c.created = Clock::now();
    if (Status st = make_host_dirs(c); !st) {
        remove_host_dir(c);
        return st.error();
    }
    auto made = client.request("POST", "/containers/create?name=" + c.name, create_body(t, c, session).dump());
    if (!made || made->status != 201) {
        remove_host_dir(c);
        if (!made) return std::move(made.error()).wrap("creating a container");
        return make_error("creating a container of image " + t.image_id,
                          "the daemon refused (HTTP " + std::to_string(made->status) + "): " + api_error(*made), EINVAL);
    }
    c.id = json::parse(made->body, nullptr, false).value("Id", std::string());
    // Attached before it starts, so nothing it writes is lost.
    auto attached = client.hijack("/containers/" + c.id + "/attach?stream=1&stdin=1&stdout=1&stderr=1", {},
                                  milliseconds(30'000));
    if (!attached) {
        destroy_container(client, c);
        return std::move(attached.error()).wrap("attaching to container " + c.name);
    }
    c.stream = std::move(*attached);
    auto started = client.request("POST", "/containers/" + c.id + "/start");
    if (!started || (started->status != 204 && started->status != 304)) {
        std::string why = started ? api_error(*started) : started.error().what();
        destroy_container(client, c);
        return make_error("starting container " + c.name, why + " (the image needs /bin/sh)", EINVAL);
    }
    auto inspected = client.request("GET", "/containers/" + c.id + "/json");
    if (inspected && inspected->status == 200) {
        json state = json::parse(inspected->body, nullptr, false);
        if (state.is_object() && state["State"].is_object()) c.pid = state["State"].value("Pid", 0);
    }
    if (c.pid > 0) c.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, c.pid, 0)));
    return c;
}

void destroy_container(const Client& client, const Container& c) {
    if (!c.id.empty()) {
        auto r = client.request("DELETE", "/containers/" + c.id + "?force=true&v=true");
        if (!r) spdlog::warn("docker runtime: removing container {}: {}", c.name, r.error().what());
        else if (r->status != 204 && r->status != 404)
            spdlog::warn("docker runtime: removing container {}: HTTP {}: {}", c.name, r->status, api_error(*r));
    }
    remove_host_dir(c);
}

Pool::Pool(const Client& client, ContainerTemplate t, unsigned size, milliseconds max_age)
    : client_(client), template_(std::move(t)), size_(size), max_age_(max_age) {
    // Creating a container costs the daemon a few hundred milliseconds,
    // mostly waiting on runc: two creators keep a pool full under calls
    // that come faster than one could refill it.
    unsigned workers = std::max(1u, std::min(size_, 2u));
    for (unsigned i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
}

Pool::~Pool() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    for (const auto& c : idle_) destroy_container(client_, c);
    for (const auto& c : used_) destroy_container(client_, c);
}

bool Pool::matches(const ContainerShape& shape) const {
    const Limits& t = template_.limits;
    const Limits& l = shape.limits;
    return shape.seccomp == template_.seccomp && l.memory_bytes == t.memory_bytes && l.cpus == t.cpus &&
           l.pids == t.pids && l.tmp_size_bytes == t.tmp_size_bytes && shape.uid == template_.uid &&
           shape.gid == template_.gid && shape.direct_workspace.empty();
}

std::optional<Container> Pool::take(const ContainerShape& shape) {
    if (!matches(shape)) return std::nullopt;
    std::lock_guard lock(mu_);
    while (!idle_.empty()) {
        Container c = std::move(idle_.front());
        idle_.pop_front();
        cv_.notify_all();
        // A container whose pid 1 has died (killed from outside, the daemon
        // restarted) cannot take a run: removed, and the next one is tried.
        pollfd exited{c.pidfd.get(), POLLIN, 0};
        if (c.pidfd && ::poll(&exited, 1, 0) == 1) {
            used_.push_back(std::move(c));
            continue;
        }
        return c;
    }
    return std::nullopt;
}

void Pool::discard(Container c) {
    {
        std::lock_guard lock(mu_);
        used_.push_back(std::move(c));
    }
    cv_.notify_all();
}

bool Pool::wait_full(milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return idle_.size() >= size_; });
}

// One loop per worker: remove used containers first (they hold memory and
// a cgroup), then fill, then replace idle ones past max_age.
void Pool::work() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
        if (!used_.empty()) {
            Container c = std::move(used_.back());
            used_.pop_back();
            lock.unlock();
            destroy_container(client_, c);
            lock.lock();
            continue;
        }
        if (!idle_.empty() && Clock::now() - idle_.front().created > max_age_) {
            Container c = std::move(idle_.front());
            idle_.pop_front();
            lock.unlock();
            destroy_container(client_, c);
            lock.lock();
            continue;
        }
        if (idle_.size() + creating_ < size_) {
            ++creating_;
            lock.unlock();
            ContainerShape shape{template_.limits, template_.seccomp, template_.uid, template_.gid, {}, {}};
            auto c = create_container(client_, template_, shape);
            lock.lock();
            --creating_;
            if (c) idle_.push_back(std::move(*c));
            else spdlog::warn("docker runtime: filling the pool: {}", c.error().what());
            cv_.notify_all();
            if (!c) cv_.wait_for(lock, std::chrono::seconds(5), [this] { return stopping_; });
            continue;
        }
        cv_.wait_for(lock, std::chrono::seconds(1));
    }
}

}  // namespace kiln::sandbox::docker
