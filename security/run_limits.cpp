#include "security/run_limits.hpp"

namespace kiln::security {

void apply_run_limits(sandbox::SandboxSpec& spec, const Policy& policy, const SandboxConfig& sandbox) {
    spec.limits.memory_bytes = policy.memory_bytes;
    spec.limits.cpus = policy.cpus;
    spec.limits.pids = policy.pids;
    spec.limits.timeout = policy.timeout;
    spec.limits.tmp_size_bytes = policy.tmp_size_bytes;
    spec.limits.output_cap_bytes = sandbox.output_cap_bytes;
    spec.seccomp = policy.seccomp;
    spec.network = policy.network;
    spec.rootfs = sandbox.rootfs;
    spec.uid = sandbox.uid;
    spec.gid = sandbox.gid;
}

nlohmann::json run_limits_json(const sandbox::SandboxSpec& spec) {
    const sandbox::Limits& l = spec.limits;
    return {{"memory_bytes", l.memory_bytes},     {"cpus", l.cpus},
            {"pids", l.pids},                     {"timeout_ms", l.timeout.count()},
            {"tmp_size_bytes", l.tmp_size_bytes}, {"output_cap_bytes", l.output_cap_bytes},
            {"seccomp", std::string(choice_name(spec.seccomp))},
            {"network", std::string(choice_name(spec.network))}};
}

}  // namespace kiln::security
