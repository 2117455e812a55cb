// The thin front end: each subcommand lives in its own cmd_*.cpp, declares
// its flags on a CLI11 sub-app and returns an action. main() parses, loads
// the configuration (defaults, file, environment, --set), then runs the
// action of the subcommand the user chose. Only this layer exits.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "common/config.hpp"

namespace kiln::cli {

// Exit codes shared by every subcommand.
enum ExitCode : int {
    kExitOk = 0,
    kExitFailure = 1,
    kExitUsage = 64,       // bad flag or argument (sysexits EX_USAGE)
    kExitConfig = 78,      // bad configuration (EX_CONFIG)
};

struct Context {
    Config config;
    std::vector<std::string> argv;  // as given, for a command that re-executes
    // Applies a flag's value to a config key so errors name the flag.
    bool set_from_flag(const std::string& key, const std::string& value, const std::string& flag);
};

using Action = std::function<int(Context&)>;

// `--image` (kiln run, kiln serve) names an imported image, the native jail's
// root (sandbox.image), or with sandbox.runtime docker a Docker image
// (sandbox.docker.image); --runtime is applied first.
inline const char* image_key(const Config& config) {
    return config.sandbox.runtime == RuntimeKind::Docker ? "sandbox.docker.image" : "sandbox.image";
}
inline constexpr const char* kImageFlagHelp =
    "Image to run in: an imported image (kiln image list; on sandbox.allowed_images) as the jail's read-only root, "
    "or with --runtime docker a Docker image (its id on sandbox.docker.allowed_images)";

struct Command {
    CLI::App* app;
    Action action;
};

Command register_serve(CLI::App& app);
Command register_version(CLI::App& app);
Command register_config(CLI::App& app);
Command register_run(CLI::App& app);
Command register_check(CLI::App& app);
Command register_audit(CLI::App& app);
Command register_trust(CLI::App& app);
Command register_selftest(CLI::App& app);
Command register_token(CLI::App& app);
Command register_image(CLI::App& app);

}  // namespace kiln::cli
