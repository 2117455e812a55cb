// The Docker runtime: the daemon's and the image's checks at start, the
// controls it reports, leftovers, and run(): a pooled (or fresh) container
// per run, destroyed after it.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "sandbox/docker_internal.hpp"

namespace kiln::sandbox {
namespace {

using namespace docker;
using std::chrono::milliseconds;

std::atomic<unsigned> next_runtime{0};

// "1.41" < "1.9" as numbers, not as text.
bool api_at_least(const std::string& have, int major, int minor) {
    int a = 0, b = 0;
    if (std::sscanf(have.c_str(), "%d.%d", &a, &b) != 2) return false;
    return a > major || (a == major && b >= minor);
}

Result<json> get_json(const Client& client, const std::string& path, const std::string& what) {
    auto r = client.request("GET", path, {}, milliseconds(10'000));
    if (!r) return std::move(r.error()).wrap(what);
    if (r->status != 200) return make_error(what, "HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 300), EPROTO);
    json j = json::parse(r->body, nullptr, false);
    if (j.is_discarded()) return make_error(what, "the daemon's answer is not JSON", EPROTO);
    return j;
}

// Reachable, and new enough to speak the pinned API version.
Result<DaemonFacts> check_daemon(const Client& client) {
    auto ping = client.request_unversioned("GET", "/_ping", milliseconds(5000));
    if (!ping) return std::move(ping.error()).wrap("docker runtime: the daemon at " + client.socket_path());
    auto version = client.request_unversioned("GET", "/version", milliseconds(5000));
    if (!version || version->status != 200)
        return make_error("docker runtime", "GET /version failed at " + client.socket_path(), EPROTO);
    json v = json::parse(version->body, nullptr, false);
    DaemonFacts f;
    f.version = v.value("Version", std::string("?"));
    f.api_version = v.value("ApiVersion", std::string("0"));
    if (!api_at_least(f.api_version, 1, 41))
        return make_error("docker runtime", "the daemon at " + client.socket_path() + " is Docker " + f.version +
                                                " with Engine API " + f.api_version + "; Kiln needs API 1.41 (Docker 20.10) or later",
                          ENOTSUP);
    auto info = get_json(client, "/info", "docker runtime: GET /info");
    if (!info) return info.error();
    for (const auto& opt : (*info)["SecurityOptions"]) {
        std::string s = opt.is_string() ? opt.get<std::string>() : "";
        if (s.rfind("name=apparmor", 0) == 0) f.apparmor = true;
        if (s.rfind("name=seccomp", 0) == 0) f.seccomp = true;
        if (s.rfind("name=userns", 0) == 0) f.userns = true;
    }
    f.memory_limit = info->value("MemoryLimit", false);
    f.swap_limit = info->value("SwapLimit", false);
    f.pids_limit = info->value("PidsLimit", false);
    f.cpu_quota = info->value("CpuCfsQuota", false);
    f.cgroup_version = info->value("CgroupVersion", std::string("1"));
    return f;
}

// The image exists and its id or one of its repository digests is on the
// allowlist (C005); containers are then created from the id, so a tag
// moved later cannot swap the image under a running server.
Result<std::string> check_image(const Client& client, const DockerOptions& o) {
    if (o.image.empty()) return make_error("docker runtime", "no image: set sandbox.docker.image (or --image NAME)", EINVAL);
    auto r = client.request("GET", "/images/" + url_encode(o.image) + "/json", {}, milliseconds(10'000));
    if (!r) return std::move(r.error()).wrap("docker runtime: inspecting image " + o.image);
    if (r->status == 404)
        return make_error("docker runtime", "image '" + o.image + "' is not in the daemon; load it first (docker load, docker import or docker pull)", ENOENT);
    if (r->status != 200) return make_error("docker runtime", "inspecting image " + o.image + ": HTTP " + std::to_string(r->status), EPROTO);
    json img = json::parse(r->body, nullptr, false);
    std::string id = img.value("Id", std::string());
    std::vector<std::string> names = {id};
    for (const auto& d : img["RepoDigests"])
        if (d.is_string()) names.push_back(d.get<std::string>());
    for (const auto& allowed : o.allowed_images)
        if (std::find(names.begin(), names.end(), allowed) != names.end()) return id;
    return make_error("docker runtime", "image '" + o.image + "' (id " + id +
                                            ") is not on sandbox.docker.allowed_images; add its id there to allow it (C005)",
                      EPERM);
}

// pid's process is gone: the containers it labelled are leftovers.
bool process_gone(const std::string& pid_text) {
    char* end = nullptr;
    long pid = std::strtol(pid_text.c_str(), &end, 10);
    if (pid_text.empty() || *end != '\0' || pid <= 0) return true;
    return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

// Containers of servers whose process is gone, and their host directories.
void reap_leftovers(const Client& client, const std::string& mounts_root) {
    auto list = get_json(client, "/containers/json?all=true&filters=" + labels_filter({}), "listing leftover containers");
    if (!list) {
        spdlog::warn("docker runtime: {}", list.error().what());
        return;
    }
    for (const auto& c : *list) {
        const json& labels = c["Labels"];
        if (!labels.is_object() || !process_gone(labels.value("kiln.pid", std::string()))) continue;
        Container gone;
        gone.id = c.value("Id", std::string());
        gone.name = gone.id.substr(0, 12);
        destroy_container(client, gone);
    }
    std::error_code ec;
    for (const auto& dir : std::filesystem::directory_iterator(mounts_root, ec)) {
        std::string name = dir.path().filename().string();
        if (!process_gone(name.substr(0, name.find('.')))) continue;
        for (const auto& sub : std::filesystem::directory_iterator(dir.path(), ec))
            ::umount2((sub.path() / "workspace").c_str(), MNT_DETACH);
        ::umount2(dir.path().c_str(), MNT_DETACH);
        std::filesystem::remove_all(dir.path(), ec);
    }
}

// The pool's host directory, a shared mount of itself: a mount made under
// it later propagates into the containers that bound a part of it rslave.
// Needs root; without it, runs with a workspace get a container of their own.
bool make_shared_mount(const std::string& dir) {
    if (::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND, nullptr) != 0) return false;
    if (::mount(nullptr, dir.c_str(), nullptr, MS_SHARED, nullptr) != 0) {
        ::umount2(dir.c_str(), MNT_DETACH);
        return false;
    }
    return true;
}

class DockerRunGroup final : public RunGroup {
public:
    explicit DockerRunGroup(std::string name) : name_(std::move(name)) {}
    const std::string& name() const override { return name_; }
    std::uint64_t memory_bytes() const override { return 0; }
    bool enforced() const override { return false; }

private:
    std::string name_;
};

class DockerRuntime final : public Runtime {
public:
    DockerRuntime(std::string socket) : client_(std::move(socket), kDockerApiVersion) {}
    ~DockerRuntime() override;
    std::string_view name() const override { return "docker"; }
    const HostCapabilities& capabilities() const override { return caps_; }
    Result<ExecResult> run(const SandboxSpec& spec, const RunHooks& hooks) override;
    Result<std::unique_ptr<RunGroup>> make_group(const std::string& name, std::uint64_t) override {
        return std::unique_ptr<RunGroup>(new DockerRunGroup(name));
    }
    // A live jail (run_code persist) needs a container kept across calls,
    // which the pool's one-container-per-call rule forbids here.
    Result<std::unique_ptr<LiveJail>> start(const SandboxSpec&) override {
        return make_error("start a persistent interpreter",
                          "the docker runtime runs each call in a fresh container; run_code persist needs "
                          "sandbox.runtime: native");
    }
    Status init(const DockerOptions& options);
    bool wait_pool_full(milliseconds timeout) { return pool_ ? pool_->wait_full(timeout) : true; }

private:
    void describe_controls(const DaemonFacts& f);
    Result<Container> claim(const SandboxSpec& spec, bool& pooled);
    Status place_files(const SandboxSpec& spec, const Container& c) const;

    Client client_;
    HostCapabilities caps_;
    ContainerTemplate template_;
    std::string mounts_dir_;
    bool shared_mount_ = false;
    std::unique_ptr<Pool> pool_;
};

DockerRuntime::~DockerRuntime() {
    pool_.reset();  // removes every container it holds
    if (shared_mount_) ::umount2(mounts_dir_.c_str(), MNT_DETACH);
    std::error_code ec;
    if (!mounts_dir_.empty()) std::filesystem::remove_all(mounts_dir_, ec);
}

void DockerRuntime::describe_controls(const DaemonFacts& f) {
    auto add = [&](const char* id, bool in_force, std::string detail) { caps_.controls.push_back({id, in_force, std::move(detail)}); };
    std::string ids = std::to_string(caps_.host_uid) + ":" + std::to_string(caps_.host_gid);
    // Without the daemon's user namespace (dockerd --userns-remap) uid 0 in
    // a container is host root: the run's user is not root, has no
    // capability and cannot gain one, but the selftest's C001 asks for more.
    add("C001", f.userns, f.userns ? "runs as non-root uid:gid (the session's, default " + ids + ") in the daemon's user namespace"
                                   : "runs as non-root uid:gid " + ids + " without a user namespace (dockerd --userns-remap): container uid 0 is host root");
    add("C002", true, "ReadonlyRootfs; /tmp a noexec tmpfs of sandbox.tmp_size");
    add("C003", true, "NetworkMode none: each container has only its own loopback");
    add("C006", f.seccomp, f.seccomp ? "Kiln's seccomp rules as a Docker profile (sandbox/seccomp_rules.cpp); calls newer than the daemon's libseccomp are not named"
                                     : "the daemon has no seccomp support");
    bool limits = f.memory_limit && f.pids_limit && f.cpu_quota;
    add("C007", limits, std::string("Memory = MemorySwap, NanoCpus, PidsLimit (cgroup v") + f.cgroup_version + ")" +
                            (f.swap_limit ? "" : "; the daemon reports no swap limit support: swap is not bounded") +
                            (limits ? "" : "; the daemon lacks memory, pids or CPU quota support"));
    add("C008", true, "Kiln's wall-clock timeout kills the container; it is removed after every run");
    add("C009", true, "CapDrop ALL, no-new-privileges");
    add("C010", f.apparmor, f.apparmor ? "AppArmor profile docker-default" : "the daemon has no AppArmor; no LSM confines the container");
    add("C012", true, "only /workspace (the session's) and /kiln (the run's code, read-only) are mounted, /sys is masked; environment from an allowlist");
}

Status DockerRuntime::init(const DockerOptions& o) {
    auto facts = check_daemon(client_);
    if (!facts) return facts.error();
    auto image_id = check_image(client_, o);
    if (!image_id) return image_id.error();
    caps_.rootless = ::geteuid() != 0;
    caps_.host_uid = caps_.rootless ? ::geteuid() : 65534;
    caps_.host_gid = caps_.rootless ? ::getegid() : 65534;
    caps_.lsm = facts->apparmor ? "apparmor" : "none";
    caps_.cgroup = "v" + facts->cgroup_version + " (Docker " + facts->version + ")";
    const std::string root = o.state_dir.empty() ? "/run/kiln/docker" : o.state_dir;
    reap_leftovers(client_, root);
    template_.server_id = o.server_id.empty() ? std::to_string(::getpid()) + "-" + std::to_string(next_runtime.fetch_add(1))
                                              : o.server_id;
    template_.image_id = *image_id;
    template_.apparmor = facts->apparmor;
    template_.uid = caps_.host_uid;
    template_.gid = caps_.host_gid;
    // <pid>.<server id>: reap_leftovers() knows a dead server's by its pid.
    mounts_dir_ = root + "/" + std::to_string(::getpid()) + "." + template_.server_id;
    std::error_code ec;
    std::filesystem::create_directories(mounts_dir_, ec);
    if (ec) return make_error("mkdir " + mounts_dir_, "the docker runtime's mount directory: " + ec.message(), ec.value());
    ::chmod(mounts_dir_.c_str(), 0755);
    shared_mount_ = make_shared_mount(mounts_dir_);
    template_.mounts_dir = mounts_dir_;
    template_.workspace_by_propagation = shared_mount_;
    template_.limits = o.pool_limits;
    template_.seccomp = o.pool_seccomp;
    describe_controls(*facts);
    if (!shared_mount_) caps_.notes.push_back("no shared mount for the pool (needs root): runs with a workspace get a container of their own, not a pooled one");
    caps_.notes.push_back("a session's runs share no loopback network and no memory group under docker");
    if (o.pool_size > 0) pool_ = std::make_unique<Pool>(client_, template_, o.pool_size, o.max_age);
    return {};
}

Result<Container> DockerRuntime::claim(const SandboxSpec& spec, bool& pooled) {
    bool direct = !spec.workspace_dir.empty() && !shared_mount_;
    ContainerShape shape{spec.limits, spec.seccomp, spec.host_uid ? spec.host_uid : caps_.host_uid,
                         spec.host_gid ? spec.host_gid : caps_.host_gid, direct ? spec.workspace_dir : std::string(),
                         spec.group};
    if (pool_) {
        if (auto c = pool_->take(shape)) {
            pooled = true;
            return std::move(*c);
        }
    }
    pooled = false;
    return create_container(client_, template_, shape);
}

bool under_kiln(const std::string& path) {
    return path.rfind("/kiln/", 0) == 0 && path.size() > 6 && path.find("..") == std::string::npos;
}

// The run's files, written from the host into the container's /kiln (its
// code/ directory, bound read-only), and its read-only file mounts under
// /kiln (the selftest's probe) copied there: a pooled container's mounts
// were fixed when it was made. The directory is root's; the run's user
// reads the files as "other".
Status write_host_file(const std::filesystem::path& host, const std::string& contents, const std::string& what) {
    std::error_code ec;
    std::filesystem::create_directories(host.parent_path(), ec);
    std::ofstream out(host, std::ios::binary);
    out << contents;
    out.close();
    if (!out) return make_error("writing " + host.string(), what, EIO);
    ::chmod(host.c_str(), 0644);
    return {};
}

Status DockerRuntime::place_files(const SandboxSpec& spec, const Container& c) const {
    std::error_code ec;
    if (Status st = write_host_file(c.code_dir() + "/run.sh", run_script(spec), "the run's script"); !st) return st;
    if (!spec.stdin_data.empty()) {
        if (Status st = write_host_file(c.code_dir() + "/stdin", spec.stdin_data, "the run's stdin"); !st) return st;
    }
    for (const auto& f : spec.files) {
        if (!under_kiln(f.path))
            return make_error("sandbox spec", "files: '" + f.path + "' must be under /kiln/ in the docker runtime", EINVAL);
        if (f.path == "/kiln/run.sh" || f.path == "/kiln/stdin")
            return make_error("sandbox spec", "files: '" + f.path + "' is the docker runtime's own", EINVAL);
        if (Status st = write_host_file(c.code_dir() + f.path.substr(5), f.contents, "the run's file " + f.path); !st) return st;
    }
    for (const auto& m : spec.mounts) {
        if (m.writable || !under_kiln(m.target) || !std::filesystem::is_regular_file(m.source, ec))
            return make_error("sandbox spec", "mounts: '" + m.target + "': the docker runtime takes only read-only files under /kiln/", EINVAL);
        std::filesystem::path host = c.code_dir() + m.target.substr(5);
        std::filesystem::create_directories(host.parent_path(), ec);
        if (!std::filesystem::copy_file(m.source, host, std::filesystem::copy_options::overwrite_existing, ec))
            return make_error("copying " + m.source, "into the container's " + m.target + ": " + ec.message(), ec.value());
    }
    return {};
}

Result<ExecResult> DockerRuntime::run(const SandboxSpec& spec, const RunHooks& hooks) {
    if (spec.argv.empty() || spec.argv[0].empty()) return make_error("sandbox spec", "argv is empty", EINVAL);
    if (spec.limits.timeout.count() <= 0) return make_error("sandbox spec", "timeout must be positive", EINVAL);
    if (!spec.rootfs.empty()) return make_error("sandbox spec", "rootfs is the native jail's; the docker runtime runs the image", EINVAL);
    auto t0 = Clock::now();
    bool pooled = false;
    auto container = claim(spec, pooled);
    if (!container) return std::move(container.error()).wrap("docker runtime");
    struct Discard {
        DockerRuntime& rt;
        Container& c;
        ~Discard() {
            ::umount2(c.workspace_dir().c_str(), MNT_DETACH);
            if (rt.pool_) rt.pool_->discard(std::move(c));
            else destroy_container(rt.client_, c);
        }
    } discard{*this, *container};
    if (Status st = place_files(spec, *container); !st) return st.error();
    if (auto env = std::find_if(spec.env.begin(), spec.env.end(), [](const std::string& kv) { return kv.find('=') == std::string::npos || kv[0] == '='; });
        env != spec.env.end())
        return make_error("sandbox env", "'" + *env + "' is not KEY=VALUE", EINVAL);
    RunContext ctx{client_, spec, hooks, *container};
    if (!spec.workspace_dir.empty() && container->workspace.empty()) {
        if (::mount(spec.workspace_dir.c_str(), container->workspace_dir().c_str(), nullptr, MS_BIND, nullptr) != 0)
            return sys_error("mount --bind " + spec.workspace_dir, "the session's workspace onto the container's /workspace");
    }
    auto result = run_in_container(ctx);
    if (!result) return result;
    result->timings.setup += std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0) -
                             result->timings.setup - result->timings.run - result->timings.teardown;
    result->notes.push_back(pooled ? "ran in a pooled container, removed after this run"
                                   : "ran in a container made for this run (pool empty or other limits), removed after it");
    return result;
}

}  // namespace

Result<std::string> docker_socket_from_env() {
    const char* host = std::getenv("DOCKER_HOST");
    if (!host || !*host) return std::string("/var/run/docker.sock");
    std::string h = host;
    if (h.rfind("unix://", 0) == 0) return h.substr(7);
    return make_error("DOCKER_HOST", "'" + h + "': Kiln speaks to the daemon over a unix socket only (unix:///path)", EINVAL);
}

Result<std::unique_ptr<Runtime>> make_docker_runtime(const DockerOptions& options) {
    std::string socket = options.socket;
    if (socket.empty()) {
        auto s = docker_socket_from_env();
        if (!s) return s.error();
        socket = *s;
    }
    auto rt = std::make_unique<DockerRuntime>(socket);
    if (Status st = rt->init(options); !st) return st.error();
    return std::unique_ptr<Runtime>(std::move(rt));
}

bool docker_pool_wait_full(Runtime& runtime, milliseconds timeout) {
    auto* d = dynamic_cast<DockerRuntime*>(&runtime);
    return d ? d->wait_pool_full(timeout) : false;
}

Result<std::vector<std::string>> docker_managed_containers(const std::string& socket, const std::string& server_id) {
    Client client(socket, kDockerApiVersion);
    auto list = get_json(client, "/containers/json?all=true&filters=" + labels_filter(server_id), "listing Kiln's containers");
    if (!list) return list.error();
    std::vector<std::string> ids;
    for (const auto& c : *list) ids.push_back(c.value("Id", std::string()));
    return ids;
}

}  // namespace kiln::sandbox
