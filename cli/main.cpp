// kiln: the command-line front end. Parses flags, loads the configuration,
// runs the chosen subcommand's action. All real work lives in the libraries.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>

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

    std::vector<Command> commands = {register_serve(app), register_run(app), register_check(app),
                                     register_audit(app), register_trust(app), register_selftest(app), register_config(app), register_version(app)};
    app.footer("Run 'kiln <command> --help' for the flags of each command.\n"
               "Configuration keys: 'kiln config print'. Documentation: docs/ in the source tree.");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? kExitOk : kExitUsage;
    }

    Context ctx;
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
