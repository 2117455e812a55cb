// kiln: the command-line front end. Parses flags, loads the configuration,
// runs the chosen subcommand's action. All real work lives in the libraries.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>
#include <string_view>
#include <utility>

#include "cli/cli.hpp"

extern char** environ;

namespace kiln::cli {

bool Context::set_from_flag(const std::string& key, const std::string& value, const std::string& flag) {
    Status st = config_set(config, key, value, "flag:" + flag);
    if (!st) {
        std::cerr << "kiln: " << flag << ": " << st.error().message << "\n";
        return false;
    }
    return true;
}

namespace {

// Logs go to stderr only: on the stdio transport stdout carries nothing but
// protocol messages.
void init_logging(const std::string& level) {
    auto logger = spdlog::stderr_color_mt("kiln");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(level));
}

int load_config(Context& ctx, const std::string& config_file, const std::vector<std::string>& sets) {
    std::string file = config_file;
    if (file.empty()) {
        if (const char* env = std::getenv("KILN_CONFIG"); env && *env) file = env;
    }
    if (!file.empty()) {
        if (Status st = config_load_yaml(ctx.config, file); !st) {
            std::cerr << "kiln: " << st.error().what() << "\n";
            return kExitConfig;
        }
    }
    if (Status st = config_load_env(ctx.config, environ); !st) {
        std::cerr << "kiln: " << st.error().what() << "\n";
        return kExitConfig;
    }
    for (const auto& kv : sets) {
        auto eq = kv.find('=');
        if (eq == std::string::npos) {
            std::cerr << "kiln: --set " << kv << ": expected KEY=VALUE, e.g. --set sandbox.memory=512M\n";
            return kExitUsage;
        }
        if (!ctx.set_from_flag(kv.substr(0, eq), kv.substr(eq + 1), "--set " + kv.substr(0, eq)))
            return kExitConfig;
    }
    return kExitOk;
}

using Register = Command (*)(CLI::App&);

// In the order `kiln --help` lists them.
constexpr std::pair<std::string_view, Register> kCommands[] = {
    {"serve", register_serve}, {"run", register_run},           {"check", register_check},
    {"audit", register_audit}, {"trust", register_trust},       {"selftest", register_selftest},
    {"config", register_config}, {"version", register_version}, {"token", register_token},
    {"image", register_image},
};

// The first word of argv that is neither a global option nor the value of
// one: the subcommand the user means, if the word names one. The options
// that take a value are main()'s -c/--config and --set.
std::string_view named_command(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "-c" || arg == "--config" || arg == "--set") {
            ++i;
            continue;
        }
        if (arg == "--") return {};
        if (!arg.starts_with("-")) return arg;
    }
    return {};
}

// Declaring every subcommand's flags costs CLI11 about 0.2 ms, paid by each
// short-lived `kiln run`. When argv names a subcommand only that one is
// declared; otherwise (no subcommand, a typo, plain --help) all are, so
// help and errors list every command.
std::vector<Command> register_commands(CLI::App& app, std::string_view named) {
    for (const auto& [name, reg] : kCommands)
        if (name == named) return {reg(app)};
    std::vector<Command> all;
    for (const auto& [name, reg] : kCommands) all.push_back(reg(app));
    return all;
}

}  // namespace
}  // namespace kiln::cli

int main(int argc, char** argv) {
    using namespace kiln::cli;
    CLI::App app{
        "Kiln: an MCP server that runs AI agents' code in a sandbox, behind a security\n"
        "validator (threats T001-T005, controls C001-C013) and a tamper-evident audit log.\n"};
    app.name("kiln");
    app.require_subcommand(1);
    app.fallthrough();

    std::string config_file;
    std::vector<std::string> sets;
    app.add_option("-c,--config", config_file, "YAML configuration file (also $KILN_CONFIG)");
    app.add_option("--set", sets, "Override one config key, e.g. --set sandbox.memory=512M (repeatable)");

    std::vector<Command> commands = register_commands(app, named_command(argc, argv));
    app.footer("Run 'kiln <command> --help' for the flags of each command.\n"
               "Configuration keys: 'kiln config print'. Documentation: docs/ in the source tree.");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? kExitOk : kExitUsage;
    }

    Context ctx;
    ctx.argv.assign(argv, argv + argc);
    if (int rc = load_config(ctx, config_file, sets); rc != kExitOk) return rc;
    for (auto& cmd : commands) {
        if (cmd.app && cmd.app->parsed()) {
            init_logging(ctx.config.server.log_level);
            kiln::config_finalize(ctx.config);
            return cmd.action(ctx);
        }
    }
    std::cerr << app.help();
    return kExitUsage;
}
