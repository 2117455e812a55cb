// Placeholder until the check subcommand lands; registers nothing visible.
#include "cli/cli.hpp"

namespace kiln::cli {

Command register_check(CLI::App&) { return Command{nullptr, {}}; }

}  // namespace kiln::cli
