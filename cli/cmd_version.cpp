#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/cli.hpp"

namespace kiln::cli {

Command register_version(CLI::App& app) {
    auto* sub = app.add_subcommand("version", "Print Kiln's version and the MCP protocol versions it speaks");
    auto json = std::make_shared<bool>(false);
    sub->add_flag("--json", *json, "Print as JSON");
    return {sub, [json](Context&) {
                if (*json) {
                    nlohmann::json out = {{"name", "kiln"}, {"version", KILN_VERSION},
                                          {"protocol_versions", {"2025-11-25", "2025-06-18", "2025-03-26"}}};
                    std::cout << out.dump() << "\n";
                } else {
                    std::cout << "kiln " << KILN_VERSION << "\nMCP protocol versions: 2025-11-25, 2025-06-18, 2025-03-26\n";
                }
                return 0;
            }};
}

}  // namespace kiln::cli
