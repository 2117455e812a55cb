// Placeholder until the audit subcommand lands; registers nothing visible.
#include "cli/cli.hpp"

namespace kiln::cli {

Command register_audit(CLI::App&) { return Command{nullptr, {}}; }

}  // namespace kiln::cli
