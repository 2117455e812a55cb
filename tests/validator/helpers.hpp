// Shared by the validator tests.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "security/policy.hpp"

namespace kiln::security::testing {

// A shipped preset, loaded as the server would; fails the test if it does not load.
inline Policy preset(const std::string& name) {
    PolicyConfig pc;
    pc.preset = name;
    auto p = load_policy(pc);
    REQUIRE_MESSAGE(p.ok(), p.error().what());
    return *p;
}

}  // namespace kiln::security::testing
