// load_policy: a built-in preset, then the operator's policy file on top;
// effective_policy: that, then the configuration's sandbox.* limits.
// Apart from policy.cpp because the build-time generator of the presets
// (policy_gen.cpp) links the parser but cannot link the presets it makes.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "security/policy.hpp"
#include "security/presets.hpp"

namespace kiln::security {

Result<Policy> load_policy(const PolicyConfig& config) {
    const Policy* preset = builtin_preset(config.preset);
    if (!preset)
        return make_error("load policy", "unknown preset '" + config.preset +
                                             "' (use permissive, balanced, strict or paranoid; key policy.preset)");
    Policy policy = *preset;
    if (config.file.empty()) return policy;

    std::ifstream in(config.file);
    if (!in) return sys_error("open policy file " + config.file, "check the path in policy.file");
    std::stringstream buf;
    buf << in.rdbuf();
    if (Status st = apply_policy_yaml(policy, buf.str(), config.file); !st) return st.error();
    return policy;
}

namespace {

// The sandbox.* keys the operator set win over the policy's defaults. The
// bounds an agent may ask for grow with them: an operator who sets
// sandbox.timeout=5m means runs may take five minutes.
void apply_sandbox_limits(Policy& policy, const SandboxConfig& sandbox) {
    if (sandbox.memory_bytes) policy.memory_bytes = *sandbox.memory_bytes;
    if (sandbox.cpus) policy.cpus = *sandbox.cpus;
    if (sandbox.pids) policy.pids = *sandbox.pids;
    if (sandbox.timeout) policy.timeout = *sandbox.timeout;
    if (sandbox.tmp_size_bytes) policy.tmp_size_bytes = *sandbox.tmp_size_bytes;
    if (sandbox.seccomp) policy.seccomp = *sandbox.seccomp;
    policy.max_timeout = std::max(policy.max_timeout, policy.timeout);
    policy.max_memory_bytes = std::max(policy.max_memory_bytes, policy.memory_bytes);
}

}  // namespace

Result<Policy> effective_policy(const Config& config) {
    auto policy = load_policy(config.policy);
    if (!policy) return policy;
    apply_sandbox_limits(*policy, config.sandbox);
    return policy;
}

}  // namespace kiln::security
