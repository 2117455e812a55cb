// load_policy: a built-in preset, then the operator's policy file on top.
// Apart from policy.cpp because the build-time generator of the presets
// (policy_gen.cpp) links the parser but cannot link the presets it makes.
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

}  // namespace kiln::security
