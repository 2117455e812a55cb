// The Docker runtime's parts, shared by docker_runtime.cpp (the daemon
// checks and the Runtime), docker_pool.cpp (containers and their warm
// pool) and docker_exec.cpp (one run in one container).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "sandbox/docker.hpp"
#include "common/unique_fd.hpp"
#include "sandbox/docker_http.hpp"

namespace kiln::sandbox::docker {

using nlohmann::json;

// What the daemon said about itself at start.
struct DaemonFacts {
    std::string version, api_version;
    bool apparmor = false, seccomp = false, userns = false;
    bool memory_limit = false, swap_limit = false, pids_limit = false, cpu_quota = false;
    std::string cgroup_version;  // "1" or "2"
};

// The settings every container of this runtime is created with.
struct ContainerTemplate {
    std::string image_id;
    Limits limits;
    SeccompProfile seccomp = SeccompProfile::Default;
    bool apparmor = false;
    // The host directory of the containers' mounts; shared (mount
    // propagation) when workspace_by_propagation is true.
    std::string mounts_dir;
    bool workspace_by_propagation = false;
    std::string server_id;
    unsigned uid = 65534, gid = 65534;  // the pool's containers run as these
};

// One container of Kiln's, started and idle, or claimed by one run. Its
// host directory <mounts_dir>/<name> holds code/ (bound read-only at
// /kiln: the run's files) and workspace/ (bound at /workspace: the
// session's workspace is mounted onto it for the run).
struct Container {
    std::string id, name, host_dir;
    int pid = 0;  // its pid 1 on the host (inspect), 0 if unknown
    UniqueFd pidfd;  // of that pid 1: killed without a pid-reuse race
    unsigned uid = 0, gid = 0;  // the container's User
    Stream stream;   // attached before start: its stdin, stdout and stderr
    Limits limits;
    SeccompProfile seccomp = SeccompProfile::Default;
    std::string workspace;  // bound directly at creation (no propagation); empty: none
    Clock::time_point created;
    std::string code_dir() const { return host_dir + "/code"; }
    std::string workspace_dir() const { return host_dir + "/workspace"; }
};

std::string labels_filter(const std::string& server_id);

// What a container is made for: its limits, seccomp profile, user, and a
// workspace bound directly (no propagation) or none.
struct ContainerShape {
    Limits limits;
    SeccompProfile seccomp = SeccompProfile::Default;
    unsigned uid = 65534, gid = 65534;
    std::string direct_workspace, session;
};

// Creates, attaches to and starts one container; on failure nothing is
// left behind.
Result<Container> create_container(const Client& client, const ContainerTemplate& t, const ContainerShape& shape);
// Kills and removes it and its host directory; errors are only logged
// (there is nobody to give them to), and the next start reaps what is left.
void destroy_container(const Client& client, const Container& c);

// The warm pool: started, idle containers of the template's limits, filled
// and emptied by one background thread, which also removes used containers
// so that a run does not wait for the daemon's removal.
class Pool {
public:
    Pool(const Client& client, ContainerTemplate t, unsigned size, std::chrono::milliseconds max_age);
    ~Pool();  // removes every container it holds or was given
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    // An idle container of this shape, or nothing (the run makes its own).
    std::optional<Container> take(const ContainerShape& shape);
    // A used container, to be killed (already) and removed in the background.
    void discard(Container c);
    // Waits until the pool holds `size` containers (tests and benchmarks).
    bool wait_full(std::chrono::milliseconds timeout);

private:
    void work();
    bool matches(const ContainerShape& shape) const;

    const Client& client_;
    ContainerTemplate template_;
    const unsigned size_;
    const std::chrono::milliseconds max_age_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Container> idle_;
    std::vector<Container> used_;
    unsigned creating_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> workers_;
};

struct RunContext {
    const Client& client;
    const SandboxSpec& spec;
    const RunHooks& hooks;
    Container& container;
};

// The script pid 1 sources once it reads the go line (docker_exec.cpp).
std::string run_script(const SandboxSpec& spec);

// Runs the spec in the container through its pid 1 and fills the result:
// output (demultiplexed, capped), exit status, timeout, cancellation, OOM,
// peak memory and CPU. The container has ended when it returns.
Result<ExecResult> run_in_container(RunContext& ctx);

}  // namespace kiln::sandbox::docker
