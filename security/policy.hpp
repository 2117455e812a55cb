// Validation policy: decision thresholds, the sandbox defaults a run gets,
// and the bounds an agent may ask for.
//
// Presets ship as YAML (security/presets/*.yaml, embedded at build time):
// permissive (warn only), balanced (default: deny critical, ask for high),
// strict (deny high and above, ask for medium), paranoid (deny medium and
// above, strict seccomp, command allowlist on). policy.file names a YAML
// file whose keys override the preset's.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config.hpp"
#include "common/result.hpp"
#include "threat_model/catalogue.hpp"

namespace kiln::security {

enum class Decision { Allow, Ask, Deny };

// A new field also goes into policy_fields() in policy.cpp, the one table
// that YAML loading, to_json() and the generated presets (policy_gen) read.
struct Policy {
    std::string name = "balanced";

    // Decision thresholds on the overall risk level: risk >= deny_at -> deny,
    // else risk >= ask_at -> ask, else allow. warn_only turns every deny and
    // ask into allow (the reasons still say what would have happened).
    threat_model::Level deny_at = threat_model::Level::Critical;
    threat_model::Level ask_at = threat_model::Level::High;
    bool warn_only = false;
    // Decision for input the validator cannot read (binary, invalid UTF-8,
    // over max_code_bytes).
    Decision unparseable = Decision::Deny;

    // Sandbox defaults for a run.
    std::uint64_t memory_bytes = 256ull << 20;
    double cpus = 1.0;
    unsigned pids = 64;
    std::chrono::milliseconds timeout{30'000};
    std::uint64_t tmp_size_bytes = 64ull << 20;
    NetworkMode network = NetworkMode::None;
    SeccompProfile seccomp = SeccompProfile::Default;

    // Bounds an agent may ask for.
    std::chrono::milliseconds max_timeout{120'000};
    std::uint64_t max_memory_bytes = 1ull << 30;
    std::uint64_t max_code_bytes = 1ull << 20;

    // C005: run_command / kiln run shell commands must start with one of these.
    bool command_allowlist_enabled = false;
    std::vector<std::string> command_allowlist;

    // Used when the decision is Ask but the client cannot be asked.
    Decision ask_fallback = Decision::Deny;

    nlohmann::json to_json() const;
};

// Names of the embedded presets, in order of strictness.
std::vector<std::string> preset_names();
// Preset by name, then config.file on top. Errors name the key and line.
Result<Policy> load_policy(const PolicyConfig& config);
// The policy every command runs with (serve, run, check, selftest): the
// preset, then policy.file, then each sandbox.* limit the operator set in
// the configuration (its file, environment or flags, merged in that order).
Result<Policy> effective_policy(const Config& config);
// The policy's fields as C++ designated initializers, in declaration
// order: how security/policy_gen writes the built-in presets out.
std::vector<std::pair<std::string, std::string>> policy_initializers(const Policy& policy);
// Applies YAML text on top of `policy`; `origin` names the source in errors.
Status apply_policy_yaml(Policy& policy, std::string_view yaml_text, const std::string& origin);

const char* to_string(Decision d);

}  // namespace kiln::security
