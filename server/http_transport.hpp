// MCP's Streamable HTTP transport (2025-11-25, negotiating 2025-06-18 and
// 2025-03-26) on cpp-httplib: one endpoint where POST carries client
// messages, GET opens the session's server-to-client SSE stream and DELETE
// ends the session; plus /healthz and /readyz. Each session is one
// server::Session with its own workspace, exactly as on stdio.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "server/auth.hpp"
#include "server/mcp_session.hpp"
#include "server/metrics_endpoint.hpp"
#include "server/tls.hpp"

namespace kiln::server {

struct HttpOptions {
    std::string host = "127.0.0.1";
    int port = 8080;  // 0: any free port (the log says which)
    std::string path = "/mcp";
    // Origins browsers may send from; "scheme://host:*" allows any port.
    // Empty: the loopback origins only.
    std::vector<std::string> allowed_origins;
    // Host header names (without port) accepted; empty: loopback names and
    // the listen address.
    std::vector<std::string> allowed_hosts;
    std::chrono::milliseconds session_idle_timeout{30 * 60 * 1000};
    unsigned max_sessions = 64;
    unsigned max_sse_streams = 32;              // GET streams open at once, all sessions
    unsigned max_sse_streams_per_session = 2;
    unsigned max_calls = 64;                    // POSTs being answered at once, all sessions
    std::chrono::milliseconds call_wait{2000};  // a POST past max_calls waits this long, then 429
    std::size_t sse_buffer_events = 256;        // events kept per stream for resumption
    unsigned threads = 0;                       // 0: max_calls + max_sse_streams + kSpareWorkers
    std::chrono::milliseconds shutdown_grace{10'000};
    std::chrono::seconds keep_alive_timeout{5};
    std::chrono::seconds read_timeout{5};
    bool allow_unauthenticated_remote = false;
    // Sent as Kiln-Replica on every response, so a client behind a load
    // balancer (and the tests) can tell which replica answered; empty: none.
    std::string replica_id;

    // Null, or mode none: everyone is "anonymous". Reloaded on SIGHUP.
    std::shared_ptr<auth::Authenticator> authenticator;
    // Set: HTTPS with these credentials, reloaded on SIGHUP. Null: plain HTTP.
    std::shared_ptr<tls::Credentials> tls;
    // Set and enabled: GET /metrics. Null or disabled: no such route.
    std::shared_ptr<const MetricsEndpoint> metrics;
    // /readyz: can the runtime start a jail and is the audit log writable?
    std::function<Status()> ready;
};

// Workers allowed beyond the calls and streams that may each hold one, for
// pings, tools/list, /healthz, idle keep-alive and slow connections. They
// are started on demand and end when idle (server/connection_pool.hpp).
inline constexpr unsigned kSpareWorkers = 1024;

// Refuses a non-loopback address without authentication unless the
// operator set server.http.allow_unauthenticated_remote.
Status check_listen_address(const HttpOptions& options);

// Whether requests must authenticate (an authenticator in a mode but none).
bool requires_authentication(const HttpOptions& options);

// Serves until SIGTERM or SIGINT arrives on `stop_fd` (a signalfd from
// block_termination_signals), then shuts down gracefully; a SIGHUP on it
// reloads the authenticator's tokens or JWKS and the TLS credentials.
// Returns the process exit status.
int serve_http(const HttpOptions& http, const SessionOptions& session, const tools::Registry& registry, int stop_fd);

}  // namespace kiln::server
