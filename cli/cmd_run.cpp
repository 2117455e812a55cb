// Placeholder until the run subcommand lands; registers nothing visible.
#include "cli/cli.hpp"

namespace kiln::cli {

Command register_run(CLI::App&) { return Command{nullptr, {}}; }

}  // namespace kiln::cli
