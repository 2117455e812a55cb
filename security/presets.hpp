// The built-in policy presets (security/presets/*.yaml), as Policy values.
//
// security/policy_gen applies each preset's YAML to a default Policy with
// apply_policy_yaml() at build time and generates presets_data.cpp, which
// defines builtin_preset(). kiln so checks and parses no YAML for a preset
// when it starts (yaml-cpp took about 0.25 ms of every validated
// `kiln run` for it); an invalid preset fails the build.
#pragma once

#include <string_view>

#include "security/policy.hpp"

namespace kiln::security {

// The preset called `name`, or nullptr when there is none.
const Policy* builtin_preset(std::string_view name);

}  // namespace kiln::security
