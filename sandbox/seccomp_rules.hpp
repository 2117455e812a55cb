// What the seccomp filters deny (C006), and the filters this build embeds.
//
// compile_rules() builds a filter with libseccomp. It runs at build time:
// kiln-seccomp-gen (seccomp_gen.cpp) writes its output as the arrays below
// (seccomp_filters.cpp in the build directory), so the server neither links
// libseccomp nor spends its compile (about 0.2 ms) on every start, which
// every `kiln run` pays. A filter is a pure function of these rules and the
// architecture, so compiling it ahead changes nothing in what it does.
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <string>
#include <vector>

#include "common/choices.hpp"
#include "common/result.hpp"
#include "sandbox/seccomp.hpp"

namespace kiln::sandbox::seccomp {

Result<std::vector<sock_filter>> compile_rules(Filter which);
// The same rules as a Docker seccomp profile (JSON, for HostConfig
// SecurityOpt "seccomp=..."): the base filter's, and for the strict
// profile the no-new-process filter's as well.
Result<std::string> docker_profile_json(SeccompProfile profile);

// Generated from compile_rules() when Kiln was built.
extern const sock_filter kBaseFilter[];
extern const std::size_t kBaseFilterLength;
extern const sock_filter kNoNewProcessFilter[];
extern const std::size_t kNoNewProcessFilterLength;
extern const char kDockerProfileDefault[];
extern const char kDockerProfileStrict[];

}  // namespace kiln::sandbox::seccomp
