// The Docker runtime: Kiln's runs in containers of a Docker (or Podman)
// daemon, over the Engine API on its unix socket, behind the same Runtime
// interface as the native jail (docs/sandbox.md, "The Docker runtime").
//
// Each run gets a fresh container with every limit applied at creation,
// taken from a warm pool of started, idle containers of the one allowed
// image; it is killed and removed after that one run, never reused. The
// session's workspace appears at /workspace for that run only (a bind
// mount made on the host that propagates into the container).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "sandbox/runtime.hpp"

namespace kiln::sandbox {

// The Engine API version Kiln speaks: Docker 20.10 (Debian 12's docker.io).
inline constexpr const char* kDockerApiVersion = "1.41";

struct DockerOptions {
    // The daemon's unix socket. Empty: $DOCKER_HOST (unix:// only), else
    // /var/run/docker.sock.
    std::string socket;
    std::string image;                        // name or id
    std::vector<std::string> allowed_images;  // ids or name@sha256 digests (C005)
    unsigned pool_size = 2;
    std::chrono::milliseconds max_age{10 * 60 * 1000};
    // The limits pooled containers are made with (the policy's): a run
    // whose limits differ gets a container made for it instead.
    Limits pool_limits;
    SeccompProfile pool_seccomp = SeccompProfile::Default;
    // Labels kiln.server=<server_id> on every container; also names the
    // host directory of the pool's mounts. Empty: "pid<getpid()>".
    std::string server_id;
    // Host directory for the pool's per-container mounts (code, workspace
    // mount point). Empty: /run/kiln/docker.
    std::string state_dir;
};

// Checks the daemon (reachable, API >= 1.41) and the image (present, on the
// allowlist) before any container exists, removes the leftovers of earlier
// servers, and starts filling the pool.
Result<std::unique_ptr<Runtime>> make_docker_runtime(const DockerOptions& options);

// Waits until the warm pool of a Docker runtime is full (benchmarks and
// tests measure the warm path); false on timeout or another runtime.
bool docker_pool_wait_full(Runtime& runtime, std::chrono::milliseconds timeout);

// Containers labelled kiln.managed=true (and kiln.server=<server_id> when
// given) that exist now, by id: what the tests and leftover checks list.
Result<std::vector<std::string>> docker_managed_containers(const std::string& socket, const std::string& server_id = {});

// The socket named by $DOCKER_HOST (unix://PATH), else /var/run/docker.sock;
// an error for a tcp:// or ssh:// DOCKER_HOST, which Kiln does not speak.
Result<std::string> docker_socket_from_env();

}  // namespace kiln::sandbox
