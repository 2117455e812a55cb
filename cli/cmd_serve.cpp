#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "cli/cli.hpp"
#include "common/libcrypto.hpp"
#include "common/request_state.hpp"
#include "sandbox/user.hpp"
#ifdef KILN_HTTP_BUILTIN
#include "server/http_transport.hpp"
#endif
#include "server/stdio_transport.hpp"
#include "tools/toolbox.hpp"

namespace kiln::cli {

namespace {

server::SessionOptions session_options(const Config& config, tools::Toolbox& box) {
    server::SessionOptions options;
    options.max_message_bytes = config.server.max_message_bytes;
    options.max_inflight_calls = config.server.max_inflight_calls;
    options.page_size = config.server.page_size;
    options.server_version = KILN_VERSION;
    options.instructions =
        "Kiln runs code in an isolated sandbox. Every call is checked by a security validator and "
        "recorded in an audit log.";
    options.on_close = [&box](const std::string& id) { box.session_closed(id); };
    options.resources = &box.resources();
    return options;
}

#ifdef KILN_HTTP_BUILTIN
// The authenticator, the TLS credentials and the metrics endpoint, each
// loaded now so that a bad key, file or certificate stops the server at
// start with the configuration key's name.
Status load_http_security(const Config& config, server::HttpOptions& o) {
    if (Status st = tls::check_config(config.tls); !st) return st;
    if (config.auth.mode != AuthMode::None) {
        auto authenticator = auth::Authenticator::create(config.auth);
        if (!authenticator) return std::move(authenticator).error();
        o.authenticator = std::move(*authenticator);
    }
    if (!config.tls.cert_file.empty()) {
        auto credentials = tls::Credentials::load(config.tls);
        if (!credentials) return std::move(credentials).error();
        o.tls = std::move(*credentials);
    }
    auto metrics = server::MetricsEndpoint::create(config.server);
    if (!metrics) return std::move(metrics).error();
    o.metrics = std::make_shared<const server::MetricsEndpoint>(std::move(*metrics));
    return {};
}

server::HttpOptions http_options(const HttpConfig& c, tools::Toolbox& box) {
    server::HttpOptions o;
    auto address = parse_listen_address(c.listen);  // checked when the key was set
    o.host = address ? address->host : "127.0.0.1";
    o.port = address ? address->port : 8080;
    o.path = c.path;
    o.allowed_origins = c.allowed_origins;
    o.allowed_hosts = c.allowed_hosts;
    o.session_idle_timeout = c.session_idle_timeout;
    o.max_sessions = c.max_sessions;
    o.max_sse_streams = c.max_sse_streams;
    o.max_sse_streams_per_session = c.max_sse_streams_per_session;
    o.max_calls = c.max_calls;
    o.call_wait = c.call_wait;
    o.sse_buffer_events = c.sse_buffer_events;
    o.threads = c.threads;
    o.keep_alive_timeout = std::chrono::duration_cast<std::chrono::seconds>(c.keep_alive_timeout);
    o.read_timeout = std::chrono::duration_cast<std::chrono::seconds>(c.read_timeout);
    o.shutdown_grace = c.shutdown_grace;
    o.allow_unauthenticated_remote = c.allow_unauthenticated_remote;
    o.ready = [&box] { return box.ready(); };
    return o;
}
#else
// kiln-http is this program with the HTTP transport built in (see
// cli/meson.build for why it is apart). It reads the same argv,
// environment and configuration file, so it serves what was asked here.
// Returns only when it cannot be started.
int exec_http_helper(const std::vector<std::string>& argv) {
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    std::string helper = (ec ? std::filesystem::path(".") : self.parent_path()) / "kiln-http";
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(helper.c_str(), args.data());
    spdlog::error("cannot start the HTTP transport: {}: {}; it is built and installed next to kiln "
                  "(ninja -C build cli/kiln-http)", helper, std::strerror(errno));
    return int(kExitFailure);
}
#endif

}  // namespace

Command register_serve(CLI::App& app) {
    auto* sub = app.add_subcommand(
        "serve",
        "Serve MCP. By default to one client over stdin/stdout (newline-delimited JSON-RPC):\n"
        "this is what an MCP client (Claude Desktop, Claude Code...) launches; it ends at EOF.\n"
        "With --http ADDRESS (or server.transport: http), Streamable HTTP for many clients at\n"
        "http://ADDRESS/mcp (https with server.tls.*), each session with its own workspace,\n"
        "plus /healthz, /readyz and /metrics; it ends on SIGTERM or SIGINT, and SIGHUP reloads\n"
        "the tokens file or JWKS and the certificate (server.auth.*, docs/auth.md). Without\n"
        "authentication it serves loopback addresses only.\n"
        "Logs go to stderr; on stdio, stdout carries only protocol messages.");
    struct Flags {
        std::string log_level, max_message, max_inflight, audit_log, http, runtime, image;
        bool test_tools = false, allow_missing_controls = false;
    };
    auto f = std::make_shared<Flags>();
    sub->add_option("--log-level", f->log_level, "stderr log level: trace, debug, info, warn, error, off");
    sub->add_option("--max-message-bytes", f->max_message, "largest message accepted, e.g. 4M (default 4MiB)");
    sub->add_option("--max-inflight", f->max_inflight, "tool calls running at once (default 16)");
    sub->add_option("--audit-log", f->audit_log, "audit log file (JSON Lines); default <state_dir>/audit.jsonl");
    sub->add_option("--http", f->http, "serve Streamable HTTP on HOST:PORT, e.g. 127.0.0.1:8080 (port 0: any free one)");
    sub->add_option("--runtime", f->runtime, "native (Kiln's jail, the default) or docker (containers of --image, sandbox.docker.*)");
    sub->add_option("--image", f->image, kImageFlagHelp);
    sub->add_flag("--test-tools", f->test_tools, "register the diagnostic debug_* tools and conformance fixtures (for tests only)");
    sub->add_flag("--allow-missing-controls", f->allow_missing_controls,
                  "start even when the selftest at start finds a control the policy requires missing (logged as a warning)");
    return {sub, [f](Context& ctx) {
                if (!f->log_level.empty() && !ctx.set_from_flag("server.log_level", f->log_level, "--log-level")) return int(kExitUsage);
                if (!f->max_message.empty() && !ctx.set_from_flag("server.max_message_bytes", f->max_message, "--max-message-bytes")) return int(kExitUsage);
                if (!f->max_inflight.empty() && !ctx.set_from_flag("server.max_inflight_calls", f->max_inflight, "--max-inflight")) return int(kExitUsage);
                if (!f->audit_log.empty() && !ctx.set_from_flag("audit.path", f->audit_log, "--audit-log")) return int(kExitUsage);
                if (!f->runtime.empty() && !ctx.set_from_flag("sandbox.runtime", f->runtime, "--runtime")) return int(kExitUsage);
                if (!f->image.empty() && !ctx.set_from_flag(image_key(ctx.config), f->image, "--image")) return int(kExitUsage);
                if (!f->http.empty()) {
                    if (!ctx.set_from_flag("server.http.listen", f->http, "--http")) return int(kExitUsage);
                    ctx.config.server.transport = Transport::Http;
                }
                if (f->test_tools) ctx.config.server.test_tools = true;
                if (f->allow_missing_controls) ctx.config.server.allow_missing_controls = true;
                spdlog::set_level(spdlog::level::from_str(ctx.config.server.log_level));
#ifndef KILN_HTTP_BUILTIN
                if (ctx.config.server.transport == Transport::Http) return exec_http_helper(ctx.argv);
#endif

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

                server::SessionOptions options = session_options(ctx.config, **toolbox);
                auto signer = RequestStateSigner::from_key_file(ctx.config.server.request_state_key_file);
                if (!signer) {
                    spdlog::error("cannot start: {} (server.request_state_key_file)", signer.error().what());
                    return int(kExitFailure);
                }
                // Replicas on one shared store share the record of used states too.
                if (ctx.config.workspace.store == WorkspaceStoreKind::Shared) {
                    const std::string ledger = ctx.config.workspace.shared_dir + "/request-state";
                    if (Status st = (*signer)->record_redeemed_in(ledger); !st) {
                        spdlog::error("cannot start: {} (workspace.shared_dir)", st.error().what());
                        return int(kExitFailure);
                    }
                }
                options.request_state = std::move(*signer);
                switch (ctx.config.server.transport) {
                    case Transport::Stdio:
                        return server::serve_stdio(options, (*toolbox)->registry(), stop_fd.get());
                    case Transport::Http: {
#ifdef KILN_HTTP_BUILTIN
                        server::HttpOptions http = http_options(ctx.config.http, **toolbox);
                        http.replica_id = replica_id(ctx.config);
                        if (Status st = load_http_security(ctx.config, http); !st) {
                            spdlog::error("cannot start: {}", st.error().what());
                            return int(kExitFailure);
                        }
                        return server::serve_http(http, options, (*toolbox)->registry(), stop_fd.get());
#else
                        break;  // exec_http_helper above
#endif
                    }
                }
                return int(kExitFailure);
            }};
}

}  // namespace kiln::cli
