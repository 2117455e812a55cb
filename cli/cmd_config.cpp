#include <iostream>

#include "cli/cli.hpp"

namespace kiln::cli {

Command register_config(CLI::App& app) {
    auto* sub = app.add_subcommand("config", "Show the configuration Kiln would run with");
    sub->require_subcommand(1);
    auto* print = sub->add_subcommand(
        "print", "Print every key with its value and where it came from (default, file:LINE, env, flag)");
    (void)print;
    return {sub, [](Context& ctx) {
                std::cout << config_to_yaml(ctx.config);
                return 0;
            }};
}

}  // namespace kiln::cli
