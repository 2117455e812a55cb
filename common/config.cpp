#include "common/config.hpp"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <functional>
#include <sstream>

#include "common/text.hpp"
#include "common/units.hpp"

namespace kiln {
namespace {

using Setter = std::function<Status(Config&, const std::string&)>;
// nullopt: a sandbox limit left unset, so the policy's applies.
using Getter = std::function<std::optional<std::string>(const Config&)>;

struct Key {
    const char* name;
    const char* help;
    Setter set;
    Getter get;
};

Error bad_value(const std::string& value, const std::string& expected) {
    return make_error("", "'" + value + "' is not valid: expected " + expected);
}

Result<std::uint64_t> parse_uint(const std::string& v, std::uint64_t lo, std::uint64_t hi) {
    if (v.empty() || !std::all_of(v.begin(), v.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
        return bad_value(v, "an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    errno = 0;
    unsigned long long n = std::strtoull(v.c_str(), nullptr, 10);
    if (errno != 0 || n < lo || n > hi)
        return bad_value(v, "an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    return static_cast<std::uint64_t>(n);
}

template <class V, class Format>
std::string shown(const V& value, Format format) {
    return format(value);
}

template <class V, class Format>
std::optional<std::string> shown(const std::optional<V>& value, Format format) {
    if (!value) return std::nullopt;
    return format(*value);
}

// F is the field's type: the value itself, or std::optional of it for a
// key whose unset state means "the policy's".
template <class T, class F>
Key uint_key(const char* name, const char* help, T Config::*section, F T::*field,
             std::uint64_t lo, std::uint64_t hi) {
    return Key{name, help,
               [=](Config& c, const std::string& v) -> Status {
                   auto n = parse_uint(v, lo, hi);
                   if (!n) return n.error();
                   (c.*section).*field = static_cast<unsigned>(*n);
                   return {};
               },
               [=](const Config& c) { return shown((c.*section).*field, [](unsigned n) { return std::to_string(n); }); }};
}

template <class T, class F>
Key size_key(const char* name, const char* help, T Config::*section, F T::*field,
             std::uint64_t lo, std::uint64_t hi) {
    return Key{name, help,
               [=](Config& c, const std::string& v) -> Status {
                   auto n = parse_size(v);
                   if (!n) return n.error();
                   if (*n < lo || *n > hi)
                       return bad_value(v, "a size from " + format_size(lo) + " to " + format_size(hi));
                   (c.*section).*field = *n;
                   return {};
               },
               [=](const Config& c) { return shown((c.*section).*field, [](std::uint64_t n) { return format_size(n); }); }};
}

template <class T, class F>
Key duration_key(const char* name, const char* help, T Config::*section, F T::*field,
                 std::chrono::milliseconds lo, std::chrono::milliseconds hi) {
    return Key{name, help,
               [=](Config& c, const std::string& v) -> Status {
                   auto d = parse_duration(v);
                   if (!d) return d.error();
                   if (*d < lo || *d > hi)
                       return bad_value(v, "a duration from " + format_duration(lo) + " to " + format_duration(hi));
                   (c.*section).*field = *d;
                   return {};
               },
               [=](const Config& c) {
                   return shown((c.*section).*field, [](std::chrono::milliseconds d) { return format_duration(d); });
               }};
}

template <class T>
Key string_key(const char* name, const char* help, T Config::*section, std::string T::*field,
               std::vector<std::string> allowed = {}) {
    return Key{name, help,
               [=](Config& c, const std::string& v) -> Status {
                   if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
                       std::string list;
                       for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
                       return bad_value(v, "one of " + list);
                   }
                   (c.*section).*field = v;
                   return {};
               },
               [=](const Config& c) { return (c.*section).*field; }};
}

// A key whose values are an enum's names (common/choices.hpp). F is the
// enum, or std::optional of it.
template <class E, class T, class F>
Key enum_key(const char* name, const char* help, T Config::*section, F T::*field) {
    return Key{name, help,
               [=](Config& c, const std::string& v) -> Status {
                   auto e = parse_choice<E>(v);
                   if (!e) return e.error();
                   (c.*section).*field = *e;
                   return {};
               },
               [=](const Config& c) { return shown((c.*section).*field, [](E e) { return std::string(choice_name(e)); }); }};
}

template <class T>
Key bool_key(const char* name, const char* help, T Config::*section, bool T::*field) {
    return Key{name, help,
               [=](Config& c, const std::string& v) -> Status {
                   if (v == "true" || v == "1" || v == "yes") (c.*section).*field = true;
                   else if (v == "false" || v == "0" || v == "no") (c.*section).*field = false;
                   else return bad_value(v, "true or false");
                   return {};
               },
               [=](const Config& c) { return std::string((c.*section).*field ? "true" : "false"); }};
}

Key cpus_key() {
    return Key{"sandbox.cpus", "CPU quota per run, in cores (0.05-64)",
               [](Config& c, const std::string& v) -> Status {
                   char* end = nullptr;
                   double d = std::strtod(v.c_str(), &end);
                   if (v.empty() || *end != '\0' || !(d >= 0.05 && d <= 64))
                       return bad_value(v, "a number of cores from 0.05 to 64");
                   c.sandbox.cpus = d;
                   return {};
               },
               [](const Config& c) {
                   return shown(c.sandbox.cpus, [](double d) {
                       std::ostringstream o;
                       o << d;
                       return o.str();
                   });
               }};
}

bool is_scope(const std::string& s) { return is_scope_token(s); }

// "sha256:<64 hex>", alone (an image id) or after "name@" (a repository digest).
bool is_image_digest(const std::string& s) {
    std::size_t at = s.find('@');
    std::string digest = at == std::string::npos ? s : s.substr(at + 1);
    return (at == std::string::npos || at > 0) && digest.size() == 71 && digest.rfind("sha256:", 0) == 0 &&
           std::all_of(digest.begin() + 7, digest.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) && !std::isupper(static_cast<unsigned char>(c)); });
}

// An absolute http(s) URI that can sit inside a quoted header parameter.
bool is_header_safe_url(const std::string& s) {
    bool scheme = s.rfind("https://", 0) == 0 || s.rfind("http://", 0) == 0;
    return scheme && s.find('#') == std::string::npos && is_scope_token(s);
}

// Words separated by spaces or commas: "a b", "a, b", and a YAML sequence,
// which the loader joins with ", ". (RFC 6749 allows ',' inside a scope;
// no scope Kiln gates on has one.)
std::vector<std::string> split_words(std::string v) {
    std::replace(v.begin(), v.end(), ',', ' ');
    std::vector<std::string> out;
    std::istringstream in(v);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

std::string join_words(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
    return out;
}

// An image pinned by digest: NAME@sha256:<64 lowercase hex digits>.
bool is_pinned_image(const std::string& w) {
    const auto at = w.rfind('@');
    if (at == 0 || at == std::string::npos || w.size() - at - 1 != 71 || w.compare(at + 1, 7, "sha256:") != 0) return false;
    return std::all_of(w.begin() + static_cast<long>(at) + 8, w.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A space-separated list whose every word passes `valid`.
template <class T>
Key words_key(const char* name, const char* help, T Config::*section, std::vector<std::string> T::*field,
              bool (*valid)(const std::string&), const char* expected) {
    return Key{name, help,
               [=](Config& c, const std::string& v) -> Status {
                   auto words = split_words(v);
                   for (const auto& w : words)
                       if (!valid(w)) return bad_value(w, expected);
                   (c.*section).*field = std::move(words);
                   return {};
               },
               [=](const Config& c) { return join_words((c.*section).*field); }};
}

// A single URL, or empty.
template <class T>
Key url_key(const char* name, const char* help, T Config::*section, std::string T::*field) {
    return Key{name, help,
               [=](Config& c, const std::string& v) -> Status {
                   if (!v.empty() && !is_header_safe_url(v))
                       return bad_value(v, "an absolute https:// (or http://) URI without a fragment, spaces or quotes");
                   (c.*section).*field = v;
                   return {};
               },
               [=](const Config& c) { return (c.*section).*field; }};
}

bool valid_origin(const std::string& o) {
    return (o.rfind("http://", 0) == 0 || o.rfind("https://", 0) == 0) && o.find('/', o.find("//") + 2) == std::string::npos;
}

bool valid_host_name(const std::string& h) {
    return (!h.empty() && h.find_first_of(" /:@") == std::string::npos) ||
           (h.size() > 2 && h.front() == '[' && h.back() == ']');
}

Key listen_key() {
    return Key{"server.http.listen", "address and port the HTTP transport listens on (port 0: any free one)",
               [](Config& c, const std::string& v) -> Status {
                   auto a = parse_listen_address(v);
                   if (!a) return a.error();
                   c.http.listen = v;
                   return {};
               },
               [](const Config& c) { return c.http.listen; }};
}

Key http_path_key() {
    return Key{"server.http.path", "the MCP endpoint's path",
               [](Config& c, const std::string& v) -> Status {
                   if (v.size() < 2 || v.front() != '/' || v.find_first_of(" ?#*:") != std::string::npos ||
                       v == "/healthz" || v == "/readyz")
                       return bad_value(v, "a path such as /mcp (not /healthz or /readyz)");
                   c.http.path = v;
                   return {};
               },
               [](const Config& c) { return c.http.path; }};
}

// A replica id names a file and travels in a response header: letters,
// digits, '.', '_' and '-' only.
Key replica_id_key() {
    return Key{"server.replica_id", "this replica's name in audit records, the audit file's name and the Kiln-Replica header; empty: the host name",
               [](Config& c, const std::string& v) -> Status {
                   bool ok = v.empty() ||
                             (v.size() <= 64 && v.front() != '.' &&
                              v.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
                                  std::string::npos);
                   if (!ok) return bad_value(v, "up to 64 letters, digits, '.', '_' or '-', not starting with '.' (empty: the host name)");
                   c.server.replica_id = v;
                   return {};
               },
               [](const Config& c) { return c.server.replica_id; }};
}

using std::chrono::milliseconds;
constexpr std::uint64_t KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024;

const std::vector<Key>& schema() {
    static const std::vector<Key> keys = {
        enum_key<Transport>("server.transport", "stdio: one client on stdin/stdout; http: Streamable HTTP, many clients (server.http.*)", &Config::server, &ServerConfig::transport),
        size_key("server.max_message_bytes", "largest JSON-RPC message accepted", &Config::server, &ServerConfig::max_message_bytes, 1 * KiB, 256 * MiB),
        uint_key("server.max_inflight_calls", "tool calls running at once; more are refused", &Config::server, &ServerConfig::max_inflight_calls, 1, 1024),
        uint_key("server.page_size", "items per tools/list page", &Config::server, &ServerConfig::page_size, 1, 1000),
        string_key("server.log_level", "stderr log level", &Config::server, &ServerConfig::log_level, {"trace", "debug", "info", "warn", "error", "off"}),
        string_key("server.state_dir", "workspaces, trust store and default audit log live here", &Config::server, &ServerConfig::state_dir),
        string_key("server.request_state_key_file", "HMAC key (32+ bytes, mode 0600, made on first start) signing MCP 2026-07-28 approvals' requestState; share it between replicas", &Config::server, &ServerConfig::request_state_key_file),
        bool_key("server.test_tools", "register diagnostic tools (tests only)", &Config::server, &ServerConfig::test_tools),
        bool_key("server.allow_missing_controls", "start even when the selftest finds a control the policy requires missing", &Config::server, &ServerConfig::allow_missing_controls),
        replica_id_key(),
        bool_key("server.metrics.enabled", "serve Prometheus metrics at GET /metrics (HTTP transport)", &Config::server, &ServerConfig::metrics_enabled),
        string_key("server.metrics.token_file", "file (mode 0600) holding the bearer token GET /metrics requires; empty: none", &Config::server, &ServerConfig::metrics_token_file),
        enum_key<AuthMode>("server.auth.mode", "how HTTP clients authenticate: none, tokens (server.auth.tokens_file) or jwt (OAuth 2.1 access tokens)", &Config::auth, &AuthConfig::mode),
        string_key("server.auth.tokens_file", "bearer tokens, one '<principal> <token or sha256:hex> [scope...]' per line", &Config::auth, &AuthConfig::tokens_file),
        string_key("server.auth.jwks_file", "JWKS file with the authorization server's RS256/ES256 keys (reloaded on SIGHUP)", &Config::auth, &AuthConfig::jwks_file),
        url_key("server.auth.issuer", "the iss every JWT must carry", &Config::auth, &AuthConfig::issuer),
        url_key("server.auth.resource", "this server's URI: the aud a JWT must name (RFC 8707) and the protected-resource metadata's resource", &Config::auth, &AuthConfig::resource),
        words_key("server.auth.authorization_servers", "authorization servers listed in the protected-resource metadata, a list (empty: the issuer)", &Config::auth, &AuthConfig::authorization_servers, is_header_safe_url, "an absolute https:// (or http://) URI"),
        words_key("server.auth.scopes", "scopes every request needs, a list", &Config::auth, &AuthConfig::scopes, is_scope, "a scope token (printable ASCII without space, quote or backslash)"),
        words_key("server.auth.run_scopes", "scopes run_code and run_command need as well, a list", &Config::auth, &AuthConfig::run_scopes, is_scope, "a scope token (printable ASCII without space, quote or backslash)"),
        duration_key("server.auth.clock_skew", "leeway when checking a JWT's exp and nbf", &Config::auth, &AuthConfig::clock_skew, milliseconds(0), milliseconds(300'000)),
        string_key("server.tls.cert_file", "PEM certificate (then its chain) for HTTPS; with key_file, reloaded on SIGHUP", &Config::tls, &TlsConfig::cert_file),
        string_key("server.tls.key_file", "PEM private key of server.tls.cert_file", &Config::tls, &TlsConfig::key_file),
        listen_key(),
        http_path_key(),
        words_key("server.http.allowed_origins", "Origin values accepted (scheme://host:port, :* for any port); empty: loopback origins", &Config::http, &HttpConfig::allowed_origins, valid_origin, "an origin such as https://app.example.com or http://localhost:*"),
        words_key("server.http.allowed_hosts", "Host header names accepted; empty: loopback names and the listen address", &Config::http, &HttpConfig::allowed_hosts, valid_host_name, "a host name without port, such as kiln.example.com or [::1]"),
        duration_key("server.http.session_idle_timeout", "a session unused this long ends and its workspace goes", &Config::http, &HttpConfig::session_idle_timeout, milliseconds(1000), milliseconds(7LL * 24 * 3600 * 1000)),
        uint_key("server.http.max_sessions", "HTTP sessions open at once; initialize past it gets 429", &Config::http, &HttpConfig::max_sessions, 1, 10000),
        uint_key("server.http.max_sse_streams", "GET event streams open at once, all sessions", &Config::http, &HttpConfig::max_sse_streams, 1, 1024),
        uint_key("server.http.max_sse_streams_per_session", "GET event streams open at once per session", &Config::http, &HttpConfig::max_sse_streams_per_session, 1, 16),
        uint_key("server.http.max_calls", "POSTs being answered at once, all sessions; more wait call_wait, then 429", &Config::http, &HttpConfig::max_calls, 1, 1024),
        duration_key("server.http.call_wait", "how long a POST past max_calls waits for a slot before 429", &Config::http, &HttpConfig::call_wait, milliseconds(0), milliseconds(60'000)),
        uint_key("server.http.sse_buffer_events", "events kept per SSE stream for resumption with Last-Event-ID", &Config::http, &HttpConfig::sse_buffer_events, 16, 65536),
        uint_key("server.http.threads", "most HTTP worker threads, one per open connection, started on demand; 0: max_calls + max_sse_streams + 1024", &Config::http, &HttpConfig::threads, 0, 4096),
        duration_key("server.http.keep_alive_timeout", "an idle keep-alive connection is closed after this", &Config::http, &HttpConfig::keep_alive_timeout, milliseconds(1000), milliseconds(300'000)),
        duration_key("server.http.read_timeout", "a request that sends nothing for this long is dropped", &Config::http, &HttpConfig::read_timeout, milliseconds(1000), milliseconds(300'000)),
        duration_key("server.http.shutdown_grace", "on SIGTERM, running calls get this long before they are cancelled", &Config::http, &HttpConfig::shutdown_grace, milliseconds(0), milliseconds(600'000)),
        bool_key("server.http.allow_unauthenticated_remote", "DANGER: serve a non-loopback address without authentication", &Config::http, &HttpConfig::allow_unauthenticated_remote),
        enum_key<RuntimeKind>("sandbox.runtime", "runtime that runs code: native (Kiln's own jail) or docker (sandbox.docker.*)", &Config::sandbox, &SandboxConfig::runtime),
        string_key("sandbox.rootfs", "directory used as the jail's root instead of host binds", &Config::sandbox, &SandboxConfig::rootfs),
        string_key("sandbox.image", "imported image (kiln image list) used as the jail's read-only root; must be in sandbox.allowed_images", &Config::sandbox, &SandboxConfig::image),
        words_key("sandbox.allowed_images", "images a jail may use, a list of NAME@sha256:<digest> as kiln image list shows (C005)", &Config::sandbox, &SandboxConfig::allowed_images, is_pinned_image, "NAME@sha256:<64 hex digits>"),
        bool_key("sandbox.call_images", "let run_code and run_command pick an image of sandbox.allowed_images with their 'image' argument", &Config::sandbox, &SandboxConfig::call_images),
        enum_key<SeccompProfile>("sandbox.seccomp", "seccomp profile, default or strict", &Config::sandbox, &SandboxConfig::seccomp),
        size_key("sandbox.memory", "memory limit per run, no swap", &Config::sandbox, &SandboxConfig::memory_bytes, 8 * MiB, 64 * GiB),
        cpus_key(),
        uint_key("sandbox.pids", "process limit per run", &Config::sandbox, &SandboxConfig::pids, 1, 65536),
        duration_key("sandbox.timeout", "wall-clock limit per run", &Config::sandbox, &SandboxConfig::timeout, milliseconds(100), milliseconds(3'600'000)),
        size_key("sandbox.tmp_size", "size of the jail's /tmp tmpfs", &Config::sandbox, &SandboxConfig::tmp_size_bytes, 1 * MiB, 16 * GiB),
        size_key("sandbox.output_cap", "bytes kept of stdout and of stderr", &Config::sandbox, &SandboxConfig::output_cap_bytes, 1 * KiB, 256 * MiB),
        uint_key("sandbox.uid", "uid the code runs as inside the jail", &Config::sandbox, &SandboxConfig::uid, 1, 4294967294u),
        uint_key("sandbox.gid", "gid the code runs as inside the jail", &Config::sandbox, &SandboxConfig::gid, 1, 4294967294u),
        uint_key("sandbox.host_ids", "first host uid/gid of the range a root server gives sessions, one each (workspace.max_sessions + workspace.max_runs_total of them)", &Config::sandbox, &SandboxConfig::host_ids, 1000, 4000000000u),
        string_key("sandbox.docker.image", "image every run of the docker runtime uses (name or id; kiln run/serve --image)", &Config::docker, &DockerConfig::image),
        words_key("sandbox.docker.allowed_images", "image ids (sha256:...) or repository digests (name@sha256:...) the image must match, a list (C005)", &Config::docker, &DockerConfig::allowed_images, is_image_digest, "an image id sha256:<64 hex> or a digest name@sha256:<64 hex>"),
        uint_key("sandbox.docker.pool_size", "started, idle containers the docker runtime keeps ready (0: one made per run)", &Config::docker, &DockerConfig::pool_size, 0, 64),
        duration_key("sandbox.docker.max_age", "an idle pooled container older than this is replaced", &Config::docker, &DockerConfig::max_age, milliseconds(10'000), milliseconds(24LL * 3'600'000)),
        string_key("policy.preset", "policy preset", &Config::policy, &PolicyConfig::preset, {"permissive", "balanced", "strict", "paranoid"}),
        string_key("policy.file", "YAML file that overrides the preset", &Config::policy, &PolicyConfig::file),
        enum_key<ValidationMode>("policy.validation", "enforce decisions, warn only, or skip the validator (off)", &Config::policy, &PolicyConfig::validation),
        string_key("audit.path", "audit log file (JSON Lines)", &Config::audit, &AuditConfig::path),
        string_key("audit.fsync", "durability of each record", &Config::audit, &AuditConfig::fsync, {"always", "batch", "never"}),
        duration_key("audit.batch_interval", "longest wait before a batch is synced", &Config::audit, &AuditConfig::batch_interval, milliseconds(1), milliseconds(10'000)),
        uint_key("audit.batch_records", "records per group commit", &Config::audit, &AuditConfig::batch_records, 1, 1'000'000),
        enum_key<AuditOnFailure>("audit.on_failure", "what to do when the log cannot be written: fail_closed or continue", &Config::audit, &AuditConfig::on_failure),
        string_key("audit.hmac_key_file", "file holding the HMAC key for the hash chain", &Config::audit, &AuditConfig::hmac_key_file),
        string_key("audit.seal_key_file", "file holding the AES-256-GCM key that seals code", &Config::audit, &AuditConfig::seal_key_file),
        size_key("audit.rotate_bytes", "rotate the log past this size (0: never)", &Config::audit, &AuditConfig::rotate_bytes, 0, 1024 * GiB),
        size_key("audit.code_max_bytes", "bytes of code kept in a record", &Config::audit, &AuditConfig::code_max_bytes, 0, 16 * MiB),
        size_key("audit.reserve_bytes", "disk space kept allocated past the log's end for the records of calls in flight", &Config::audit, &AuditConfig::reserve_bytes, 64 * KiB, kMaxAuditReserveBytes),
        size_key("workspace.size", "tmpfs quota of each session's workspace", &Config::workspace, &WorkspaceConfig::size_bytes, 1 * MiB, 64 * GiB),
        uint_key("workspace.max_files", "files, directories and links a workspace may hold (its inodes: they cost kernel memory, not size)", &Config::workspace, &WorkspaceConfig::max_files, 64, 16'000'000),
        duration_key("workspace.idle_ttl", "idle time after which a workspace is destroyed", &Config::workspace, &WorkspaceConfig::idle_ttl, milliseconds(1000), milliseconds(7 * 86'400'000LL)),
        uint_key("workspace.max_sessions", "sessions with a workspace at once", &Config::workspace, &WorkspaceConfig::max_sessions, 1, 100'000),
        uint_key("workspace.max_runs_per_session", "concurrent runs per session", &Config::workspace, &WorkspaceConfig::max_runs_per_session, 1, 1024),
        uint_key("workspace.max_runs_total", "concurrent runs in all", &Config::workspace, &WorkspaceConfig::max_runs_total, 1, 4096),
        uint_key("workspace.queue_length", "calls that may wait for a run slot at once (0: refuse at once)", &Config::workspace, &WorkspaceConfig::queue_length, 0, 100'000),
        duration_key("workspace.queue_wait", "longest wait for a run slot before a call is refused", &Config::workspace, &WorkspaceConfig::queue_wait, milliseconds(0), milliseconds(3'600'000)),
        enum_key<WorkspaceNetwork>("workspace.network", "network namespace per session (its runs share a loopback; root only) or per run", &Config::workspace, &WorkspaceConfig::network),
        uint_key("workspace.max_images", "figures a run returns as images; more are dropped with a note", &Config::workspace, &WorkspaceConfig::max_images, 0, 64),
        size_key("workspace.max_image_size", "largest figure returned as an image", &Config::workspace, &WorkspaceConfig::max_image_bytes, 1 * KiB, 64 * MiB),
        uint_key("workspace.max_file_links", "created or changed files a run returns as links; more are counted in a note", &Config::workspace, &WorkspaceConfig::max_file_links, 0, 10'000),
        duration_key("interpreter.idle_timeout", "idle time after which a persistent interpreter ends (its variables with it)", &Config::interpreter, &InterpreterConfig::idle_timeout, milliseconds(1000), milliseconds(7 * 86'400'000LL)),
        uint_key("interpreter.max_per_server", "persistent interpreters at once on the server (0: run_code persist is refused)", &Config::interpreter, &InterpreterConfig::max_per_server, 0, 4096),
        uint_key("interpreter.max_per_principal", "persistent interpreters at once per principal", &Config::interpreter, &InterpreterConfig::max_per_principal, 0, 4096),
        size_key("interpreter.memory", "memory limit of each persistent interpreter's jail (no swap)", &Config::interpreter, &InterpreterConfig::memory_bytes, 64 * MiB, 64 * GiB),
        enum_key<WorkspaceStoreKind>("workspace.store", "where workspace_create's workspaces live: local (this machine) or shared (workspace.shared_dir, mounted by every replica)", &Config::workspace, &WorkspaceConfig::store),
        string_key("workspace.shared_dir", "directory every replica mounts for workspace.store=shared (and the shared trust store)", &Config::workspace, &WorkspaceConfig::shared_dir),
    };
    return keys;
}

const Key* find_key(const std::string& name) {
    for (const auto& k : schema())
        if (name == k.name) return &k;
    return nullptr;
}

// The key whose name, with '.' read as '_', is `env_name` ("server_auth_mode").
std::string key_named_by_env(const std::string& env_name) {
    for (const auto& k : schema()) {
        std::string n = k.name;
        std::replace(n.begin(), n.end(), '.', '_');
        if (n == env_name) return k.name;
    }
    return {};
}

std::string known_keys_hint(const std::string& section) {
    std::string list;
    for (const auto& k : schema()) {
        std::string n = k.name;
        if (n.rfind(section + ".", 0) == 0) list += (list.empty() ? "" : ", ") + n.substr(section.size() + 1);
    }
    return list;
}

}  // namespace

std::vector<std::string> config_keys() {
    std::vector<std::string> out;
    for (const auto& k : schema()) out.emplace_back(k.name);
    return out;
}

Status config_set(Config& config, const std::string& key, const std::string& value,
                  const std::string& origin) {
    const Key* k = find_key(key);
    if (!k) return make_error("config key '" + key + "' (" + origin + ")", "unknown key; see `kiln config print` for the known keys");
    Status st = k->set(config, value);
    if (!st) {
        Error e = st.error();
        e.step = "config key '" + key + "' (" + origin + ")";
        return e;
    }
    config.origin[key] = origin;
    return {};
}

namespace {

constexpr const char* kSections = "server, sandbox, policy, audit, workspace, interpreter";

// A scalar as it is; a sequence of scalars joined with ", ", the form the
// list keys parse.
std::optional<std::string> scalar_or_list(const YAML::Node& node) {
    if (node.IsScalar()) return node.Scalar();
    if (!node.IsSequence()) return std::nullopt;
    std::string out;
    for (const auto& item : node) {
        if (!item.IsScalar()) return std::nullopt;
        out += (out.empty() ? "" : ", ") + item.Scalar();
    }
    return out;
}

// The entries of one mapping under `prefix` ("server", "server.auth"); a
// nested mapping is a group of keys (server: {auth: {mode: jwt}}).
Status load_yaml_entries(Config& config, const std::string& path, const std::string& prefix, const YAML::Node& map) {
    for (const auto& entry : map) {
        std::string full = prefix + "." + entry.first.as<std::string>();
        std::string where = path + ":" + std::to_string(entry.first.Mark().line + 1);
        if (entry.second.IsMap() && !known_keys_hint(full).empty()) {
            Status st = load_yaml_entries(config, path, full, entry.second);
            if (!st) return st;
            continue;
        }
        std::string section = prefix.substr(0, prefix.find('.'));
        if (!find_key(full)) {
            std::string hint = known_keys_hint(prefix);
            return make_error("config " + where,
                              "unknown key '" + full + "'" +
                                  (hint.empty() ? std::string(" (unknown section '" + section + "'; known: " + kSections + ")")
                                                : " (known keys in " + prefix + ": " + hint + ")"));
        }
        auto value = scalar_or_list(entry.second);
        if (!value) return make_error("config " + where, "key '" + full + "' must be a single value or a list of them");
        Status st = config_set(config, full, *value, "file:" + where);
        if (!st) return st;
    }
    return {};
}

}  // namespace

Status config_load_yaml(Config& config, const std::string& path) {
    YAML::Node root;
    try {
        root = YAML::LoadFile(path);
    } catch (const YAML::BadFile&) {
        errno = ENOENT;
        return sys_error("read config " + path, "cannot open the file");
    } catch (const YAML::Exception& e) {
        return make_error("parse config " + path, "line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    if (root.IsNull()) return {};
    if (!root.IsMap()) return make_error("config " + path, std::string("the top level must be a mapping of sections (") + kSections + ")");
    for (const auto& section : root) {
        std::string sname = section.first.as<std::string>();
        int sline = section.first.Mark().line + 1;
        if (!section.second.IsMap()) {
            if (known_keys_hint(sname).empty())
                return make_error("config " + path + ":" + std::to_string(sline), "unknown section '" + sname + "' (known: " + std::string(kSections) + ")");
            return make_error("config " + path + ":" + std::to_string(sline), "section '" + sname + "' must be a mapping");
        }
        Status st = load_yaml_entries(config, path, sname, section.second);
        if (!st) return st;
    }
    return {};
}

Status config_load_env(Config& config, char** env) {
    if (!env) return {};
    for (char** e = env; *e; ++e) {
        std::string var(*e);
        auto eq = var.find('=');
        if (eq == std::string::npos || var.rfind("KILN_", 0) != 0) continue;
        std::string name = var.substr(5, eq - 5);
        if (name == "CONFIG" || name == "MUST_WORK") continue;  // read elsewhere
        // KILN_SANDBOX_MEMORY -> sandbox.memory, KILN_SERVER_AUTH_MODE ->
        // server.auth.mode: the key whose dots, read as '_', spell the name.
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string key = key_named_by_env(name);
        if (key.empty()) {
            auto us = name.find('_');
            if (us == std::string::npos) continue;
            return make_error("environment variable " + var.substr(0, eq),
                              "does not name a config key (" + name.substr(0, us) + "." + name.substr(us + 1) + ")");
        }
        Status st = config_set(config, key, var.substr(eq + 1), "env:" + var.substr(0, eq));
        if (!st) return st;
    }
    return {};
}

void config_finalize(Config& config) {
    if (config.server.state_dir.empty()) {
        if (geteuid() == 0) {
            config.server.state_dir = "/var/lib/kiln";
        } else if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg) {
            config.server.state_dir = std::string(xdg) + "/kiln";
        } else if (const char* home = std::getenv("HOME"); home && *home) {
            config.server.state_dir = std::string(home) + "/.local/state/kiln";
        } else {
            config.server.state_dir = "/tmp/kiln-" + std::to_string(geteuid());
        }
    }
    if (config.server.request_state_key_file.empty())
        config.server.request_state_key_file = config.server.state_dir + "/request-state.key";
    // Replicas that share a directory keep one audit chain each.
    if (config.audit.path.empty())
        config.audit.path = config.server.state_dir +
                            (config.server.replica_id.empty() ? "/audit.jsonl" : "/audit-" + config.server.replica_id + ".jsonl");
}

std::string trust_store_path(const Config& config) {
    bool shared = config.workspace.store == WorkspaceStoreKind::Shared && !config.workspace.shared_dir.empty();
    return (shared ? config.workspace.shared_dir : config.server.state_dir) + "/trust.json";
}

std::string replica_id(const Config& config) {
    if (!config.server.replica_id.empty()) return config.server.replica_id;
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "kiln";
    return host;
}

Result<ListenAddress> parse_listen_address(const std::string& text) {
    auto bad = [&] {
        return make_error("", "'" + text + "' is not valid: expected host:port, e.g. 127.0.0.1:8080 or [::1]:8080");
    };
    ListenAddress a;
    std::size_t colon;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return bad();
        a.host = text.substr(1, close - 1);
        colon = close + 1;
    } else {
        colon = text.rfind(':');
        if (colon == std::string::npos || text.find(':') != colon) return bad();
        a.host = text.substr(0, colon);
    }
    if (a.host.empty()) return bad();
    auto port = parse_uint(text.substr(colon + 1), 0, 65535);
    if (!port) return make_error("", "'" + text + "' is not valid: the port must be an integer from 0 to 65535");
    a.port = static_cast<int>(*port);
    return a;
}

std::string config_to_yaml(const Config& config) {
    std::ostringstream out;
    // The groups ("server", "auth") the last key sat in; a key opens the
    // groups it does not share with it, so keys print as nested mappings.
    std::vector<std::string> open_groups;
    for (const auto& k : schema()) {
        std::vector<std::string> parts;
        std::istringstream in(k.name);
        for (std::string p; std::getline(in, p, '.');) parts.push_back(p);
        std::size_t shared = 0;
        while (shared < open_groups.size() && shared + 1 < parts.size() && open_groups[shared] == parts[shared]) ++shared;
        open_groups.resize(shared);
        for (std::size_t i = shared; i + 1 < parts.size(); ++i) {
            out << std::string(2 * i, ' ') << parts[i] << ":\n";
            open_groups.push_back(parts[i]);
        }
        auto it = config.origin.find(k.name);
        std::string origin = it == config.origin.end() ? "default" : it->second;
        auto value = k.get(config);
        if (!value) origin = "unset: the policy's value";
        YAML::Emitter val;
        if (value) val << *value;
        else val << YAML::Null;
        out << std::string(2 * open_groups.size(), ' ') << parts.back() << ": " << val.c_str() << "  # " << k.help
            << " [" << origin << "]\n";
    }
    return out.str();
}

std::vector<std::string> config_env_names() {
    std::vector<std::string> out;
    for (const auto& k : schema()) {
        std::string n = std::string("KILN_") + k.name;
        std::replace(n.begin(), n.end(), '.', '_');
        for (auto& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        out.push_back(n);
    }
    return out;
}

}  // namespace kiln
