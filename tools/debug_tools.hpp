// Diagnostic tools for the protocol tests. Registered only when
// server.test_tools is set (kiln serve --test-tools), never by default.
#pragma once

#include "tools/registry.hpp"

namespace kiln::tools {

void register_debug_tools(Registry& registry);

}  // namespace kiln::tools
