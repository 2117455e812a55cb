#include "cli/cli.hpp"

namespace kiln::cli {

Command register_serve(CLI::App& app) {
    auto* sub = app.add_subcommand("serve", "Serve MCP over stdio (the default)");
    return {sub, [](Context&) { return 1; }};
}

}  // namespace kiln::cli
