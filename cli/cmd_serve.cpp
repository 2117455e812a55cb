#include <spdlog/spdlog.h>

#include "cli/cli.hpp"
#include "common/libcrypto.hpp"
#include "sandbox/user.hpp"
#include "server/stdio_transport.hpp"
#include "tools/toolbox.hpp"

namespace kiln::cli {

Command register_serve(CLI::App& app) {
    auto* sub = app.add_subcommand(
        "serve",
        "Serve MCP to one client over stdin/stdout (newline-delimited JSON-RPC).\n"
        "This is what an MCP client (Claude Desktop, Claude Code...) launches.\n"
        "Logs go to stderr; stdout carries only protocol messages. Ends at EOF.");
    struct Flags {
        std::string log_level, max_message, max_inflight, audit_log;
        bool test_tools = false, allow_missing_controls = false;
    };
    auto f = std::make_shared<Flags>();
    sub->add_option("--log-level", f->log_level, "stderr log level: trace, debug, info, warn, error, off");
    sub->add_option("--max-message-bytes", f->max_message, "largest message accepted, e.g. 4M (default 4MiB)");
    sub->add_option("--max-inflight", f->max_inflight, "tool calls running at once (default 16)");
    sub->add_option("--audit-log", f->audit_log, "audit log file (JSON Lines); default <state_dir>/audit.jsonl");
    sub->add_flag("--test-tools", f->test_tools, "register the diagnostic debug_* tools (for tests only)");
    sub->add_flag("--allow-missing-controls", f->allow_missing_controls,
                  "start even when the selftest at start finds a control the policy requires missing (logged as a warning)");
    return {sub, [f](Context& ctx) {
                if (!f->log_level.empty() && !ctx.set_from_flag("server.log_level", f->log_level, "--log-level")) return int(kExitUsage);
                if (!f->max_message.empty() && !ctx.set_from_flag("server.max_message_bytes", f->max_message, "--max-message-bytes")) return int(kExitUsage);
                if (!f->max_inflight.empty() && !ctx.set_from_flag("server.max_inflight_calls", f->max_inflight, "--max-inflight")) return int(kExitUsage);
                if (!f->audit_log.empty() && !ctx.set_from_flag("audit.path", f->audit_log, "--audit-log")) return int(kExitUsage);
                if (f->test_tools) ctx.config.server.test_tools = true;
                if (f->allow_missing_controls) ctx.config.server.allow_missing_controls = true;
                spdlog::set_level(spdlog::level::from_str(ctx.config.server.log_level));

                // The audit log hashes every record: a missing libcrypto must
                // stop the server now, not at its first tool call.
                if (Status st = crypto::load(); !st) {
                    spdlog::error("cannot start: {}", st.error().what());
                    return int(kExitFailure);
                }
                // A rootless server mounts its workspaces (tmpfs with a quota) in
                // namespaces of its own; they must be made while it has one thread.
                if (::geteuid() != 0) {
                    if (Status st = sandbox::user::own_namespaces_for_rootless_server(); !st)
                        spdlog::warn("no namespaces of its own for this rootless server, so workspaces have no quota: {}",
                                     st.error().what());
                }
                // Before Toolbox starts any thread (see block_termination_signals).
                UniqueFd stop_fd = server::block_termination_signals();
                auto toolbox = tools::Toolbox::create(ctx.config);
                if (!toolbox) {
                    spdlog::error("cannot start: {}", toolbox.error().what());
                    return int(kExitFailure);
                }

                server::SessionOptions options;
                options.max_message_bytes = ctx.config.server.max_message_bytes;
                options.max_inflight_calls = ctx.config.server.max_inflight_calls;
                options.page_size = ctx.config.server.page_size;
                options.server_version = KILN_VERSION;
                options.instructions =
                    "Kiln runs code in an isolated sandbox. Every call is checked by a security validator and "
                    "recorded in an audit log.";
                options.on_close = [&box = **toolbox](const std::string& id) { box.session_closed(id); };
                options.resources = &(*toolbox)->resources();
                return server::serve_stdio(options, (*toolbox)->registry(), stop_fd.get());
            }};
}

}  // namespace kiln::cli
