// The tools the official MCP conformance suite's scenarios call
// (test_simple_text, test_image_content...), registered by --test-tools
// only, next to the debug_* tools: never part of a production server.
#pragma once

#include "tools/registry.hpp"

namespace kiln::tools {

void register_conformance_fixtures(Registry& registry);

}  // namespace kiln::tools
