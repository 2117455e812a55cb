// What a run's jail gets from the effective policy (security::
// effective_policy) and the configuration: its limits, seccomp profile,
// network mode, root and ids. kiln run, kiln selftest and the run tools of
// kiln serve all fill their SandboxSpec here, so the limits that kiln://policy
// and `kiln run --json` show are the ones the jail is given.
#pragma once

#include <nlohmann/json.hpp>

#include "common/config.hpp"
#include "sandbox/runtime.hpp"
#include "security/policy.hpp"

namespace kiln::security {

// Sets spec.limits, .seccomp, .network, .rootfs, .uid and .gid.
void apply_run_limits(sandbox::SandboxSpec& spec, const Policy& policy, const SandboxConfig& sandbox);

// The spec's limits and seccomp profile, as kiln run --json and kiln
// selftest --json print them.
nlohmann::json run_limits_json(const sandbox::SandboxSpec& spec);

}  // namespace kiln::security
