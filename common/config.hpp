// Kiln's one configuration schema.
//
// The same struct is filled, in order, from built-in defaults, a YAML file
// (--config or $KILN_CONFIG), environment variables (KILN_<KEY>, its dots as _)
// and command-line flags. Every key is declared once in the table in
// config.cpp, which drives parsing, error messages and `kiln config print`.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/choices.hpp"
#include "common/result.hpp"

namespace kiln {

// The Streamable HTTP transport (server.transport: http, or kiln serve --http).
struct HttpConfig {
    std::string listen = "127.0.0.1:8080";  // host:port, [v6]:port; port 0 picks a free one
    std::string path = "/mcp";
    std::vector<std::string> allowed_origins;  // empty: the loopback origins
    std::vector<std::string> allowed_hosts;    // empty: loopback names and the listen host
    std::chrono::milliseconds session_idle_timeout{30 * 60 * 1000};
    unsigned max_sessions = 64;
    unsigned max_sse_streams = 32;
    unsigned max_sse_streams_per_session = 2;
    unsigned max_calls = 64;
    std::chrono::milliseconds call_wait{2000};
    unsigned sse_buffer_events = 256;
    unsigned threads = 0;  // 0: sized from max_calls and max_sse_streams
    std::chrono::milliseconds keep_alive_timeout{5000};
    std::chrono::milliseconds read_timeout{5000};
    std::chrono::milliseconds shutdown_grace{10'000};
    bool allow_unauthenticated_remote = false;
};

struct ServerConfig {
    Transport transport = Transport::Stdio;
    std::uint64_t max_message_bytes = 4ull << 20;
    unsigned max_inflight_calls = 16;
    unsigned page_size = 50;
    std::string log_level = "info";
    std::string state_dir;          // default: $XDG_STATE_HOME/kiln or /var/lib/kiln
    bool test_tools = false;        // registers diagnostic tools for the e2e tests
    // Start even when the selftest finds a control the policy requires missing.
    bool allow_missing_controls = false;
    // GET /metrics on the HTTP transport (server/metrics_endpoint.hpp),
    // guarded by the bearer token in metrics_token_file when set.
    bool metrics_enabled = true;
    std::string metrics_token_file;
    // HMAC key of stateless approvals' requestState (common/request_state.hpp);
    // replicas that share it finish each other's approvals.
    std::string request_state_key_file;  // default: <state_dir>/request-state.key
    // This replica's name in audit records, the audit file's name and the
    // Kiln-Replica response header; empty: the host name.
    std::string replica_id;
};

// "127.0.0.1:8080" or "[::1]:8080" split into host and port.
struct ListenAddress {
    std::string host;
    int port = 0;
};
Result<ListenAddress> parse_listen_address(const std::string& text);

struct SandboxConfig {
    RuntimeKind runtime = RuntimeKind::Native;
    std::string rootfs;             // empty: bind the host's /usr, /bin, /lib...
    // An imported image (kiln image import) as the jail's root instead;
    // it must be in allowed_images, pinned by digest (C005).
    std::string image;
    std::vector<std::string> allowed_images;  // NAME@sha256:<hex>
    // run_code / run_command may name one of allowed_images in `image`.
    bool call_images = false;
    // A run's limits. Unset: the policy's (preset, then policy.file); set,
    // they override it. security::effective_policy() applies them.
    std::optional<SeccompProfile> seccomp;
    std::optional<std::uint64_t> memory_bytes;
    std::optional<double> cpus;
    std::optional<unsigned> pids;
    std::optional<std::chrono::milliseconds> timeout;
    std::optional<std::uint64_t> tmp_size_bytes;
    std::uint64_t output_cap_bytes = 1ull << 20;
    unsigned uid = 65534;
    unsigned gid = 65534;
    // A root server maps each session's jails (and owns its workspace files)
    // to host uid and gid host_ids + N, one N per session: the kernel keeps
    // some budgets per host user (pipe buffers, epoll watches), and this way
    // no session's jails spend another's. Unused by any account by default.
    unsigned host_ids = 0x70000000;
};

// The Docker runtime (sandbox.runtime: docker; docs/sandbox.md). Keys
// sandbox.docker.*.
struct DockerConfig {
    std::string image;                        // name or id of the image every run uses
    // Image ids ("sha256:...") or repository digests ("name@sha256:...")
    // the image must match (C005); empty: no image may be used.
    std::vector<std::string> allowed_images;
    unsigned pool_size = 2;                   // started, idle containers kept ready
    std::chrono::milliseconds max_age{10 * 60 * 1000};  // an idle one older than this is replaced
};

struct PolicyConfig {
    std::string preset = "balanced";
    std::string file;               // optional YAML overriding the preset
    ValidationMode validation = ValidationMode::Enforce;
};

// Upper bound of audit.reserve_bytes; the audit log also gives back up to
// this much past the end of a file it rotates away.
inline constexpr std::uint64_t kMaxAuditReserveBytes = 1ull << 30;

struct AuditConfig {
    std::string path;               // default: <state_dir>/audit.jsonl
    std::string fsync = "always";   // always | batch | never
    std::chrono::milliseconds batch_interval{5};
    unsigned batch_records = 256;
    AuditOnFailure on_failure = AuditOnFailure::FailClosed;
    std::string hmac_key_file;
    std::string seal_key_file;
    std::uint64_t rotate_bytes = 0;  // 0: no rotation
    std::uint64_t code_max_bytes = 64ull << 10;
    // Disk space kept allocated past the log's end, so the records of calls
    // already admitted still land when something else fills the disk.
    std::uint64_t reserve_bytes = 4ull << 20;
    // Set by the server, not a key: the replica that writes the chain,
    // named in each record ("replica"). Empty: records name none.
    std::string replica;
};

struct WorkspaceConfig {
    std::uint64_t size_bytes = 512ull << 20;
    // Files, directories and links a workspace may hold (tmpfs nr_inodes):
    // an inode costs kernel memory but no bytes of size_bytes.
    unsigned max_files = 65536;
    std::chrono::milliseconds idle_ttl{30 * 60 * 1000};
    unsigned max_sessions = 64;
    unsigned max_runs_per_session = 4;
    unsigned max_runs_total = 16;
    // Calls past those limits wait, this many at most, this long at most;
    // only then are they refused.
    unsigned queue_length = 32;
    std::chrono::milliseconds queue_wait{60'000};
    // "session": a root server gives each session one loopback-only network
    // namespace that its runs share (as they share the workspace); "run": a
    // fresh one per run. Rootless servers always use one per run.
    WorkspaceNetwork network = WorkspaceNetwork::Session;
    // Rich results of a run (tools/rich_content.hpp): figures returned as
    // images and created or changed files returned as links, per result.
    unsigned max_images = 8;
    std::uint64_t max_image_bytes = 4ull << 20;
    unsigned max_file_links = 50;
    // Explicit workspaces (workspace_create): "local" keeps them on this
    // machine, "shared" in shared_dir, which every replica mounts.
    WorkspaceStoreKind store = WorkspaceStoreKind::Local;
    std::string shared_dir;
};

// Persistent Python interpreters (run_code persist:true), one per workspace,
// each a live jail with its own memory limit (tools/interpreter_pool.hpp).
struct InterpreterConfig {
    std::chrono::milliseconds idle_timeout{10 * 60 * 1000};
    unsigned max_per_server = 8;
    unsigned max_per_principal = 4;
    std::uint64_t memory_bytes = 1ull << 30;  // the whole jail's
};

// Who may call the HTTP transport (docs/auth.md). Keys server.auth.*.
struct AuthConfig {
    AuthMode mode = AuthMode::None;
    std::string tokens_file;        // tokens: "<principal> <token or sha256:hex> [scope...]" lines
    std::string jwks_file;          // jwt: the authorization server's signing keys
    std::string issuer;             // jwt: the "iss" every token must carry
    // This server's resource URI (RFC 8707): the "aud" a JWT must name, and
    // the "resource" of the protected-resource metadata (RFC 9728).
    std::string resource;
    std::vector<std::string> authorization_servers;  // empty: the issuer
    std::vector<std::string> scopes;      // needed for every request
    std::vector<std::string> run_scopes;  // needed as well for run_code and run_command
    std::chrono::milliseconds clock_skew{60'000};
};

// TLS for the HTTP transport; both files or neither. Keys server.tls.*.
struct TlsConfig {
    std::string cert_file;          // PEM: the certificate, then its chain
    std::string key_file;           // PEM private key, unencrypted
};

struct Config {
    ServerConfig server;
    // The HTTP transport's auth.* and tls.* keys of the server section; kept
    // apart from ServerConfig because each key's table entry reaches its
    // field through one section member.
    AuthConfig auth;
    TlsConfig tls;
    HttpConfig http;  // the server.http.* keys
    SandboxConfig sandbox;
    DockerConfig docker;  // the sandbox.docker.* keys
    PolicyConfig policy;
    AuditConfig audit;
    WorkspaceConfig workspace;
    InterpreterConfig interpreter;

    // Where each key's value came from ("file:PATH:LINE", "env:VAR",
    // "flag:--x"), for `kiln config print` only: what a value means never
    // depends on where it came from.
    std::map<std::string, std::string> origin;
};

// Sets one dotted key ("sandbox.memory") from its textual value.
Status config_set(Config& config, const std::string& key, const std::string& value,
                  const std::string& origin);
// Merges a YAML file; unknown keys and bad values name the key and line.
Status config_load_yaml(Config& config, const std::string& path);
// Applies KILN_<KEY> variables (server.metrics.enabled: KILN_SERVER_METRICS_ENABLED).
Status config_load_env(Config& config, char** environ_vars);
// Fills derived defaults (state dir, audit path) once all sources are merged.
void config_finalize(Config& config);
// server.replica_id, or the host name when it is unset.
std::string replica_id(const Config& config);
// The trust store's file: in workspace.shared_dir when the store is shared
// (every replica and `kiln trust` use one), else in the state dir.
std::string trust_store_path(const Config& config);
// The whole config as YAML, each key annotated with its origin.
std::string config_to_yaml(const Config& config);
// Names of all keys, in schema order.
std::vector<std::string> config_keys();
// The environment variable of each key, in the same order
// (server.metrics.enabled: KILN_SERVER_METRICS_ENABLED).
std::vector<std::string> config_env_names();

}  // namespace kiln
