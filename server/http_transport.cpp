#include "server/http_transport.hpp"

#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/kiln_metrics.hpp"
#include "common/text.hpp"
#include "server/connection_pool.hpp"
#include "server/http_sessions.hpp"
#include "server/jsonrpc.hpp"
#include "server/sse_stream.hpp"
#include "server/stdio_transport.hpp"

namespace kiln::server {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// How cpp-httplib 0.11.4 serves, and what follows from it: the listening
// thread accepts and hands each connection to one worker of a fixed pool,
// which keeps it for the connection's whole life (every keep-alive request,
// and an SSE response until it ends); connections beyond the pool wait in
// an unbounded queue. So every worker a connection can hold is counted:
//   - a POST holds one until its call answers: at most max_calls, and
//     past that a request waits call_wait at most, then gets 429;
//   - a GET stream holds one until it closes: at most max_sse_streams;
//   - an idle keep-alive connection holds one for keep_alive_timeout, a
//     slow request for read_timeout per read (5 s each by default);
// and the pool (server/connection_pool.hpp) starts a worker for each
// connection that finds none free, up to kSpareWorkers more than calls and
// streams together, so that pings, tools/list and /healthz find a worker
// while every call slot and stream is taken and hundreds of idle or
// trickling connections hold workers of their own.
constexpr auto kKeepAliveComment = 15s;  // an idle SSE stream writes a comment this often
// A stateless request's stream writes one every second: a write is the only
// way to learn that the client closed it, which cancels the request.
constexpr auto kStatelessKeepAlive = 1s;
constexpr int kRetryMs = 2000;           // the `retry:` a client waits before reconnecting
constexpr auto kReadyCacheFor = 5s;
constexpr unsigned kKeptWorkers = 8;       // workers an idle server keeps
constexpr auto kWorkerIdleExit = 10'000ms;  // a worker beyond them with no connection this long ends

const char* const kLoopbackNames[] = {"localhost", "127.0.0.1", "[::1]"};

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

bool is_loopback_host(const std::string& host) {
    return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

// "example.com:8080" -> "example.com", "[::1]:80" -> "[::1]".
std::string host_without_port(const std::string& host) {
    if (!host.empty() && host.front() == '[') {
        auto close = host.find(']');
        return close == std::string::npos ? host : host.substr(0, close + 1);
    }
    return host.substr(0, host.find(':'));
}

bool origin_allowed(const std::string& origin, const std::vector<std::string>& allowed) {
    std::string o = lower(origin);
    for (const auto& pattern : allowed) {
        std::string p = lower(pattern);
        if (p == o) return true;
        // "http://localhost:*": that origin on any port, or with none.
        if (p.size() > 2 && p.ends_with(":*")) {
            std::string base = p.substr(0, p.size() - 2);
            if (o == base) return true;
            if (o.rfind(base + ":", 0) == 0) {
                std::string port = o.substr(base.size() + 1);
                if (!port.empty() && std::all_of(port.begin(), port.end(), ::isdigit)) return true;
            }
        }
    }
    return false;
}

void send_json(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(jsonrpc::serialize(body), "application/json");
}

// An HTTP-level refusal, with a JSON-RPC error body that says why.
void refuse(httplib::Response& res, int status, const std::string& message, int code = jsonrpc::kInvalidRequest) {
    send_json(res, status, jsonrpc::make_error(nullptr, code, message));
}

void refuse_busy(httplib::Response& res, int status, const std::string& message) {
    res.set_header("Retry-After", "1");
    refuse(res, status, message, -32000);
}

bool accepts(const httplib::Request& req, std::string_view type) {
    if (!req.has_header("Accept")) return true;
    std::string accept = lower(req.get_header_value("Accept"));
    return accept.find(type) != std::string::npos || accept.find("*/*") != std::string::npos;
}

// The auth-failure metric's label of a refusal: the same closed set.
metrics::AuthFailure metric_reason(auth::AuthReason reason) {
    using R = auth::AuthReason;
    using M = metrics::AuthFailure;
    switch (reason) {
        case R::Missing: return M::Missing;
        case R::MalformedHeader: return M::MalformedHeader;
        case R::Malformed: return M::Malformed;
        case R::UnknownToken: return M::UnknownToken;
        case R::UnsupportedAlgorithm: return M::UnsupportedAlgorithm;
        case R::UnknownKey: return M::UnknownKey;
        case R::BadSignature: return M::BadSignature;
        case R::Expired: return M::Expired;
        case R::NotYetValid: return M::NotYetValid;
        case R::WrongIssuer: return M::WrongIssuer;
        case R::WrongAudience: return M::WrongAudience;
        case R::InsufficientScope: return M::InsufficientScope;
    }
    return M::Malformed;
}

// Each reason keeps its name as the metric's label (docs/auth.md lists them).
constexpr bool reasons_match_labels() {
    for (auto reason : auth::kAuthReasons) {
        bool found = false;
        for (const auto& label : metrics::kAuthFailureNames)
            if (label.name == auth::reason_name(reason)) found = true;
        if (!found) return false;
    }
    return std::size(auth::kAuthReasons) == std::size(metrics::kAuthFailureNames);
}
static_assert(reasons_match_labels(), "auth::AuthReason and metrics::AuthFailure must name the same reasons");

// The names of the tools a POST body calls (tools/call's params.name), to
// check each against the principal's scopes before anything runs.
std::vector<std::string> called_tools(const jsonrpc::Parsed& parsed) {
    std::vector<std::string> names;
    for (const auto& m : parsed.messages) {
        const auto* req = std::get_if<jsonrpc::Request>(&m);
        if (req && req->method == "tools/call" && req->params.is_object() && req->params.contains("name") &&
            req->params["name"].is_string())
            names.push_back(req->params["name"].get<std::string>());
    }
    return names;
}

// A bound on something many requests share: a request takes a slot, waiting
// up to `wait` for one, and gives it back when the returned handle dies.
class Slots {
public:
    explicit Slots(unsigned limit) : limit_(limit) {}
    std::shared_ptr<void> take(std::chrono::milliseconds wait) {
        std::unique_lock lock(mutex_);
        if (!cv_.wait_for(lock, wait, [&] { return used_ < limit_; })) return nullptr;
        ++used_;
        // Points at the limiter only so that the handle tests true.
        return std::shared_ptr<void>(static_cast<void*>(this), [this](void*) {
            {
                std::lock_guard l(mutex_);
                --used_;
            }
            cv_.notify_all();
        });
    }
    unsigned used() const {
        std::lock_guard lock(mutex_);
        return used_;
    }
    // Waits until no slot is taken or the deadline passes.
    bool wait_idle(std::chrono::steady_clock::time_point deadline) {
        std::unique_lock lock(mutex_);
        return cv_.wait_until(lock, deadline, [&] { return used_ == 0; });
    }

private:
    const unsigned limit_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    unsigned used_ = 0;
};

// What the messages of one POST body need from the transport.
struct PostShape {
    std::vector<std::string> request_keys;  // each request's id as JSON text
    std::string final_key;                  // the relation of the reply
    bool needs_answer = false;              // false: 202, nothing to wait for
    bool is_initialize = false;
    std::vector<std::string> cancelled_keys;  // requests notifications/cancelled ends
};

PostShape shape_of(const jsonrpc::Parsed& parsed) {
    PostShape shape;
    json ids = json::array();
    bool invalid = false;
    for (const auto& m : parsed.messages) {
        if (const auto* req = std::get_if<jsonrpc::Request>(&m)) {
            shape.request_keys.push_back(req->id.dump());
            ids.push_back(req->id);
            if (req->method == "initialize") shape.is_initialize = true;
        } else if (std::holds_alternative<jsonrpc::Invalid>(m)) {
            invalid = true;
        } else if (const auto* note = std::get_if<jsonrpc::Notification>(&m);
                   note && note->method == "notifications/cancelled" && note->params.is_object() &&
                   note->params.contains("requestId")) {
            shape.cancelled_keys.push_back(note->params["requestId"].dump());
        }
    }
    shape.needs_answer = !shape.request_keys.empty() || invalid;
    shape.final_key = parsed.is_batch ? ids.dump() : (shape.request_keys.empty() ? "" : shape.request_keys.front());
    return shape;
}

// ---- The stateless era (2026-07-28) over HTTP ----

// A POST without a session that speaks 2026-07-28: its MCP-Protocol-Version
// is not a 2025 one, or (without the header) its body carries _meta's.
bool is_stateless_post(const httplib::Request& req, const jsonrpc::Parsed& parsed) {
    if (req.has_header("MCP-Protocol-Version")) {
        std::string v = req.get_header_value("MCP-Protocol-Version");
        return std::none_of(std::begin(kSupportedVersions), std::end(kSupportedVersions), [&](const char* s) { return v == s; });
    }
    if (parsed.is_batch) return false;
    const auto* r = std::get_if<jsonrpc::Request>(&parsed.messages.front());
    return r && is_stateless_request(*r);
}

// Mcp-Name and Mcp-Param-* values that are not plain ASCII come as
// "=?base64?<base64>?="; nothing when that base64 is invalid.
std::optional<std::string> decode_header_value(const std::string& value) {
    static const std::string prefix = "=?base64?", suffix = "?=";
    if (value.size() < prefix.size() + suffix.size() || value.rfind(prefix, 0) != 0 || !value.ends_with(suffix))
        return value;
    return base64_decode(value.substr(prefix.size(), value.size() - prefix.size() - suffix.size()));
}

// The headers a load balancer may route on must say what the body says
// (Mcp-Method, MCP-Protocol-Version, Mcp-Name); what is wrong, or nothing.
std::optional<std::string> header_mismatch(const httplib::Request& req, const jsonrpc::Request& body) {
    if (!req.has_header("Mcp-Method")) return "the Mcp-Method header is required (here \"" + body.method + "\")";
    std::string method = req.get_header_value("Mcp-Method");
    if (method != body.method)
        return "Mcp-Method header value '" + method + "' does not match body value '" + body.method + "'";
    if (!req.has_header("MCP-Protocol-Version")) return "the MCP-Protocol-Version header is required";
    std::string version = req.get_header_value("MCP-Protocol-Version");
    const json& p = body.params;
    // Without a version in _meta the body is malformed, which the session
    // answers with Invalid params: there is nothing to compare.
    if (p.is_object() && p.contains("_meta") && p["_meta"].is_object() && p["_meta"].contains(kMetaProtocolVersion) &&
        p["_meta"][kMetaProtocolVersion].is_string() && p["_meta"][kMetaProtocolVersion].get<std::string>() != version)
        return "MCP-Protocol-Version header value '" + version + "' does not match _meta value '" +
               p["_meta"][kMetaProtocolVersion].get<std::string>() + "'";
    const char* field = (method == "tools/call" || method == "prompts/get") ? "name" : method == "resources/read" ? "uri" : nullptr;
    if (!field) return std::nullopt;
    if (!req.has_header("Mcp-Name")) return "the Mcp-Name header is required for " + method + " (params." + field + ")";
    std::string raw = req.get_header_value("Mcp-Name");
    auto name = decode_header_value(raw);
    if (!name) return "Mcp-Name header value '" + raw + "' is not valid base64 inside =?base64?...?=";
    std::string in_body = p.is_object() && p.contains(field) && p[field].is_string() ? p[field].get<std::string>() : "";
    if (*name != in_body) return "Mcp-Name header value '" + *name + "' does not match body value '" + in_body + "'";
    return std::nullopt;
}

// The revision gives some errors an HTTP status of their own.
int stateless_status(const std::string& body) {
    json m = json::parse(body, nullptr, false);
    if (!m.is_object() || !m.contains("error") || !m["error"].is_object()) return 200;
    switch (m["error"].value("code", 0)) {
        case jsonrpc::kMethodNotFound: return 404;
        case jsonrpc::kInvalidParams:
        case jsonrpc::kInvalidRequest:
        case kHeaderMismatch:
        case kMissingRequiredClientCapability:
        case kUnsupportedProtocolVersion: return 400;
        default: return 200;
    }
}

class HttpServer {
public:
    HttpServer(const HttpOptions& http, const SessionOptions& session, const tools::Registry& registry);
    Status bind();
    int run(int stop_fd);

private:
    struct Admitted {
        auth::Principal principal;
    };
    struct StreamState;

    void configure();
    bool check_host_and_origin(const httplib::Request& req, httplib::Response& res) const;
    std::optional<Admitted> admit(const httplib::Request& req, httplib::Response& res);
    void refuse_credentials(const httplib::Request& req, httplib::Response& res, const auth::AuthFailure& failure) const;
    bool authorize_calls(const httplib::Request& req, httplib::Response& res, const Admitted& who,
                         const jsonrpc::Parsed& parsed) const;
    std::shared_ptr<HttpSession> session_for(const httplib::Request& req, httplib::Response& res, const Admitted& who);
    bool check_protocol_version(const httplib::Request& req, httplib::Response& res) const;

    void on_post(const httplib::Request& req, httplib::Response& res);
    void start_session(const Admitted& who, jsonrpc::Parsed parsed, httplib::Response& res);
    // `stateless_end` set: the POST is a stateless request on a session of
    // its own, which this ends once the answer is out or the client left.
    void dispatch(const std::shared_ptr<HttpSession>& hs, jsonrpc::Parsed parsed, httplib::Response& res,
                  const std::function<void()>& stateless_end = {});
    void answer_post(const std::shared_ptr<HttpSession>& hs, const std::shared_ptr<SseStream>& stream,
                     httplib::Response& res, const std::function<void()>& stateless_end);
    void serve_stateless(const httplib::Request& req, const Admitted& who, jsonrpc::Parsed parsed, httplib::Response& res);
    void on_get(const httplib::Request& req, httplib::Response& res);
    void on_delete(const httplib::Request& req, httplib::Response& res);
    void on_readyz(httplib::Response& res);
    void on_metrics(const httplib::Request& req, httplib::Response& res) const;
    void serve_resource_metadata();
    void reload();

    void stream_events(httplib::Response& res, std::shared_ptr<StreamState> state);
    bool pump(StreamState& state, httplib::DataSink& sink);
    bool primes(HttpSession& hs) { return hs.session().info().protocol_version >= "2025-11-25"; }

    void expire_idle_sessions();
    void shut_down();

    HttpOptions http_;
    SessionOptions session_options_;
    const tools::Registry& registry_;
    std::unique_ptr<httplib::Server> svr_;  // an SSLServer when TLS is configured
    // Before the sessions: a stream's call slot goes back to it when the
    // stream dies, which may be as the sessions are destroyed.
    Slots calls_;
    SessionTable sessions_;
    std::atomic<unsigned> get_streams_{0};
    std::atomic<bool> draining_{false};
    std::vector<std::string> allowed_hosts_;
    std::vector<std::string> allowed_origins_;

    std::mutex ready_mutex_;
    std::chrono::steady_clock::time_point ready_checked_{};
    bool ready_ = false;
};

// One SSE response in progress: the stream, where the reader is in it, and
// what the response holds while it lasts.
struct HttpServer::StreamState {
    std::shared_ptr<HttpSession> session;
    std::shared_ptr<SseStream> stream;
    std::uint64_t after = 0;
    std::uint64_t reader = 0;
    bool prime = false;
    bool with_ids = true;  // 2026-07-28 removed event ids (no resumption)
    std::chrono::milliseconds keep_alive = kKeepAliveComment;
    std::unique_ptr<HttpSession::Use> use;
    std::function<void()> on_end;
    metrics::GaugeHold open{metrics::sse_streams()};  // kiln_sse_streams_active while it lasts
};

// An SSLServer takes its SSL_CTX set up by the credentials, which hand each
// handshake the certificate current at that moment (reloaded on SIGHUP).
std::unique_ptr<httplib::Server> make_server(const std::shared_ptr<tls::Credentials>& credentials) {
    if (!credentials) return std::make_unique<httplib::Server>();
    return std::make_unique<httplib::SSLServer>([credentials](SSL_CTX& ctx) { return credentials->setup(ctx); });
}

HttpServer::HttpServer(const HttpOptions& http, const SessionOptions& session, const tools::Registry& registry)
    : http_(http), session_options_(session), registry_(registry), svr_(make_server(http.tls)),
      calls_(http.max_calls), sessions_(http.max_sessions) {
    allowed_hosts_ = http_.allowed_hosts;
    if (allowed_hosts_.empty()) {
        allowed_hosts_.assign(std::begin(kLoopbackNames), std::end(kLoopbackNames));
        if (http_.host != "0.0.0.0" && http_.host != "::") allowed_hosts_.push_back(http_.host);
    }
    for (auto& h : allowed_hosts_) h = lower(h);
    allowed_origins_ = http_.allowed_origins;
    if (allowed_origins_.empty())
        for (const char* scheme : {"http://", "https://"})
            for (const char* name : kLoopbackNames) allowed_origins_.push_back(std::string(scheme) + name + ":*");
    configure();
}

void HttpServer::configure() {
    unsigned threads = http_.threads ? http_.threads : http_.max_calls + http_.max_sse_streams + kSpareWorkers;
    svr_->new_task_queue = [threads] { return new ConnectionPool(threads, kKeptWorkers, kWorkerIdleExit); };
    svr_->set_keep_alive_timeout(http_.keep_alive_timeout.count());
    svr_->set_keep_alive_max_count(10'000);
    svr_->set_read_timeout(http_.read_timeout.count());
    svr_->set_write_timeout(http_.read_timeout.count());
    svr_->set_payload_max_length(session_options_.max_message_bytes);
    svr_->set_tcp_nodelay(true);
    if (!http_.replica_id.empty()) svr_->set_default_headers({{"Kiln-Replica", http_.replica_id}});
    // Every response once sent, with its final status (an SSE stream's when
    // it ends): kiln_http_requests_total.
    svr_->set_logger([](const httplib::Request&, const httplib::Response& res) { metrics::record_http_request(res.status); });

    // Host and Origin on every request, before any route (DNS rebinding).
    svr_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        return check_host_and_origin(req, res) ? httplib::Server::HandlerResponse::Unhandled
                                               : httplib::Server::HandlerResponse::Handled;
    });
    svr_->set_error_handler([this](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return;
        if (res.status == 413)
            refuse(res, 413, "Payload Too Large: the body exceeds " + std::to_string(session_options_.max_message_bytes) +
                                 " bytes (server.max_message_bytes)");
        else if (res.status == 404)
            refuse(res, 404, "Not Found: MCP is served at " + http_.path);
    });
    svr_->set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
            if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        spdlog::error("http: {} {} failed: {}", req.method, req.path, what);
        refuse(res, 500, "Internal error", jsonrpc::kInternalError);
    });

    svr_->Post(http_.path, [this](const auto& req, auto& res) { on_post(req, res); });
    svr_->Get(http_.path, [this](const auto& req, auto& res) { on_get(req, res); });
    svr_->Delete(http_.path, [this](const auto& req, auto& res) { on_delete(req, res); });
    svr_->Get("/healthz", [](const auto&, auto& res) { res.set_content("ok\n", "text/plain"); });
    svr_->Get("/readyz", [this](const auto&, auto& res) { on_readyz(res); });
    if (http_.metrics && http_.metrics->enabled())
        svr_->Get("/metrics", [this](const auto& req, auto& res) { on_metrics(req, res); });
    serve_resource_metadata();
}

// RFC 9728's document, unauthenticated: a client that got a 401 reads it
// to find the authorization server (jwt mode only).
void HttpServer::serve_resource_metadata() {
    if (!http_.authenticator) return;
    auto document = http_.authenticator->protected_resource_metadata();
    if (!document) return;
    std::string body = document->dump();
    for (const auto& path : http_.authenticator->metadata_paths())
        svr_->Get(path, [body](const auto&, auto& res) { res.set_content(body, "application/json"); });
}

// Behind its own token if any, never behind MCP's authentication: a
// scraper is not an MCP client.
void HttpServer::on_metrics(const httplib::Request& req, httplib::Response& res) const {
    MetricsAnswer answer = http_.metrics->answer(req.get_header_value("Authorization"));
    res.status = answer.status;
    if (!answer.www_authenticate.empty()) res.set_header("WWW-Authenticate", answer.www_authenticate);
    res.set_content(answer.body, answer.content_type);
}

Status HttpServer::bind() {
    if (!svr_->is_valid()) return make_error("tls", "cannot set up TLS for " + http_.host + " (server.tls.*)");
    if (http_.port == 0) {
        int port = svr_->bind_to_any_port(http_.host);
        if (port <= 0) return make_error("bind", "cannot listen on " + http_.host + " (any port)", errno);
        http_.port = port;
    } else if (!svr_->bind_to_port(http_.host, http_.port)) {
        return make_error("bind", "cannot listen on " + http_.host + ":" + std::to_string(http_.port) +
                                      " (in use, or not an address of this host?)", errno);
    }
    return {};
}

bool HttpServer::check_host_and_origin(const httplib::Request& req, httplib::Response& res) const {
    std::string host = lower(host_without_port(req.get_header_value("Host")));
    if (std::find(allowed_hosts_.begin(), allowed_hosts_.end(), host) == allowed_hosts_.end()) {
        refuse(res, 403, "Forbidden: Host '" + req.get_header_value("Host") +
                             "' is not allowed (server.http.allowed_hosts)");
        return false;
    }
    if (req.has_header("Origin") && !origin_allowed(req.get_header_value("Origin"), allowed_origins_)) {
        refuse(res, 403, "Forbidden: Origin '" + req.get_header_value("Origin") +
                             "' is not allowed (server.http.allowed_origins)");
        return false;
    }
    return true;
}

void HttpServer::refuse_credentials(const httplib::Request& req, httplib::Response& res,
                                    const auth::AuthFailure& failure) const {
    auto reason = auth::reason_name(failure.reason);
    spdlog::info("http: {} {} refused: {}", req.method, req.path, reason);
    metrics::record_auth_failure(metric_reason(failure.reason));
    if (!failure.www_authenticate.empty()) res.set_header("WWW-Authenticate", failure.www_authenticate);
    std::string status = failure.status == 403 ? "Forbidden" : failure.status == 400 ? "Bad Request" : "Unauthorized";
    refuse(res, failure.status, status + ": " + std::string(reason));
}

// The one place a request's principal is decided: its credentials, then
// the scopes every request needs (server.auth.scopes).
std::optional<HttpServer::Admitted> HttpServer::admit(const httplib::Request& req, httplib::Response& res) {
    if (!http_.authenticator) return Admitted{{std::string(auth::kAnonymousPrincipal), {}}};
    auto outcome = http_.authenticator->authenticate(req.get_header_value("Authorization"));
    if (auto* failure = std::get_if<auth::AuthFailure>(&outcome)) {
        refuse_credentials(req, res, *failure);
        return std::nullopt;
    }
    Admitted who{std::move(std::get<auth::Principal>(outcome))};
    if (auto missing = http_.authenticator->authorize(who.principal, "")) {
        refuse_credentials(req, res, *missing);
        return std::nullopt;
    }
    return who;
}

// run_code and run_command need server.auth.run_scopes as well: checked
// for every call of the body before any of it is handled.
bool HttpServer::authorize_calls(const httplib::Request& req, httplib::Response& res, const Admitted& who,
                                 const jsonrpc::Parsed& parsed) const {
    if (!http_.authenticator) return true;
    for (const auto& tool : called_tools(parsed)) {
        if (auto missing = http_.authenticator->authorize(who.principal, tool)) {
            refuse_credentials(req, res, *missing);
            return false;
        }
    }
    return true;
}

bool HttpServer::check_protocol_version(const httplib::Request& req, httplib::Response& res) const {
    // Absent: the client speaks 2025-03-26, which had no such header.
    if (!req.has_header("MCP-Protocol-Version")) return true;
    std::string v = req.get_header_value("MCP-Protocol-Version");
    for (const char* supported : kSupportedVersions)
        if (v == supported) return true;
    refuse(res, 400, "Bad Request: unsupported MCP-Protocol-Version '" + v + "' (supported: 2025-11-25, 2025-06-18, 2025-03-26)");
    return false;
}

std::shared_ptr<HttpSession> HttpServer::session_for(const httplib::Request& req, httplib::Response& res, const Admitted& who) {
    if (!req.has_header("MCP-Session-Id")) {
        refuse(res, 400, "Bad Request: the MCP-Session-Id header is required; initialize a session first");
        return nullptr;
    }
    auto hs = sessions_.find(req.get_header_value("MCP-Session-Id"), who.principal.name);
    if (!hs) {
        refuse(res, 404, "Not Found: no such session (it ended, expired or never existed); initialize a new one", -32001);
        return nullptr;
    }
    if (!check_protocol_version(req, res)) return nullptr;
    return hs;
}

void HttpServer::on_post(const httplib::Request& req, httplib::Response& res) {
    auto who = admit(req, res);
    if (!who) return;
    if (draining_) return refuse_busy(res, 503, "Service Unavailable: the server is shutting down");
    if (lower(req.get_header_value("Content-Type")).rfind("application/json", 0) != 0)
        return refuse(res, 415, "Unsupported Media Type: POST a JSON-RPC message as application/json");
    if (!accepts(req, "application/json") || !accepts(req, "text/event-stream"))
        return refuse(res, 406, "Not Acceptable: the Accept header must allow application/json and text/event-stream");

    jsonrpc::Parsed parsed = jsonrpc::parse(req.body);
    if (!parsed.is_batch) {
        if (const auto* bad = std::get_if<jsonrpc::Invalid>(&parsed.messages.front()))
            return send_json(res, 400, bad->reply);
    }
    if (!authorize_calls(req, res, *who, parsed)) return;
    if (!req.has_header("MCP-Session-Id") && is_stateless_post(req, parsed))
        return serve_stateless(req, *who, std::move(parsed), res);
    PostShape shape = shape_of(parsed);
    if (!req.has_header("MCP-Session-Id") && shape.is_initialize && !parsed.is_batch)
        return start_session(*who, std::move(parsed), res);
    auto hs = session_for(req, res, *who);
    if (!hs) return;
    if (parsed.is_batch && hs->session().info().protocol_version != "2025-03-26")
        return refuse(res, 400, "Bad Request: batches are accepted only in sessions that negotiated protocol version "
                                "2025-03-26 (this one uses " + hs->session().info().protocol_version + ")");
    HttpSession::Use use(hs);
    dispatch(hs, std::move(parsed), res);
}

void HttpServer::start_session(const Admitted& who, jsonrpc::Parsed parsed, httplib::Response& res) {
    auto hs = sessions_.create(who.principal.name, http_.sse_buffer_events);
    if (!hs) return refuse_busy(res, 429, std::string("Too Many Requests: ") + hs.error().message);
    (*hs)->start(session_options_, registry_);
    PostShape shape = shape_of(parsed);
    auto stream = (*hs)->open_post_stream(shape.request_keys, shape.final_key);
    (*hs)->session().handle(std::move(parsed));
    std::vector<SseEvent> reply;
    stream->read_after(0, reply, 0ms);  // initialize answers at once
    (*hs)->forget_stream(stream);
    json body = reply.empty() ? json() : json::parse(reply.front().data, nullptr, false);
    if (!body.is_object() || !body.contains("result")) {
        // A refused initialize leaves no session behind.
        if (auto gone = sessions_.remove((*hs)->id(), who.principal.name)) gone->end();
        return send_json(res, 400, body.is_object() ? body : jsonrpc::make_error(nullptr, jsonrpc::kInternalError, "Internal error: no answer to initialize"));
    }
    spdlog::info("http: session {} started for {}", (*hs)->id(), who.principal.name);
    res.set_header("MCP-Session-Id", (*hs)->id());
    send_json(res, 200, body);
}

// One stateless request: checked against its headers, then answered by a
// protocol session that lives only as long as the request (nothing of it
// outlives the answer, so any replica can serve the next one).
void HttpServer::serve_stateless(const httplib::Request& req, const Admitted& who, jsonrpc::Parsed parsed,
                                 httplib::Response& res) {
    if (parsed.is_batch) return refuse(res, 400, "Bad Request: protocol 2026-07-28 takes one JSON-RPC message per POST, not a batch");
    const jsonrpc::Message& message = parsed.messages.front();
    if (std::holds_alternative<jsonrpc::Response>(message))
        return refuse(res, 400, "Bad Request: protocol 2026-07-28 has no server-to-client requests, so nothing a client may answer");
    // On HTTP a client cancels by closing the request's stream: a
    // notification has nothing left to act on.
    if (std::holds_alternative<jsonrpc::Notification>(message)) {
        res.status = 202;
        return;
    }
    const auto& request = std::get<jsonrpc::Request>(message);
    if (auto mismatch = header_mismatch(req, request))
        return send_json(res, 400, jsonrpc::make_error(request.id, kHeaderMismatch, "Header mismatch: " + *mismatch));
    auto hs = std::make_shared<HttpSession>(new_session_id("stateless"), who.principal.name, http_.sse_buffer_events);
    SessionOptions options = session_options_;
    // Each call's own workspace goes when the call ends (the session passes
    // its id); this passing session never had one.
    options.on_close = [inner = session_options_.on_close, own = hs->id()](const std::string& id) {
        if (id != own && inner) inner(id);
    };
    hs->start(std::move(options), registry_);
    dispatch(hs, std::move(parsed), res, [hs] {
        hs->session().cancel_all();
        hs->end();
    });
}

void HttpServer::dispatch(const std::shared_ptr<HttpSession>& hs, jsonrpc::Parsed parsed, httplib::Response& res,
                          const std::function<void()>& stateless_end) {
    PostShape shape = shape_of(parsed);
    if (!shape.needs_answer) {
        hs->session().handle(std::move(parsed));
        for (const auto& key : shape.cancelled_keys) hs->end_route(key);
        res.status = 202;
        return;
    }
    auto slot = calls_.take(http_.call_wait);
    if (!slot)
        return refuse_busy(res, 429, "Too Many Requests: " + std::to_string(http_.max_calls) +
                                         " requests are being answered (server.http.max_calls); retry shortly");
    auto stream = hs->open_post_stream(shape.request_keys, shape.final_key);
    if (!stream)
        return refuse(res, 400, "Bad Request: a request with this id is still running in this session; use a fresh id");
    stream->hold_until_finished(std::move(slot));
    hs->session().handle(std::move(parsed));
    answer_post(hs, stream, res, stateless_end);
}

// Waits for the first message of the POST's stream: the response alone is
// answered as plain JSON; anything before it (progress, logs, elicitation)
// switches the answer to an SSE stream.
//
// A stateless request's answer that takes longer than a second becomes a
// stream as well: its keep-alive comments are how a closed connection is
// noticed, and that closing cancels the request.
void HttpServer::answer_post(const std::shared_ptr<HttpSession>& hs, const std::shared_ptr<SseStream>& stream,
                             httplib::Response& res, const std::function<void()>& stateless_end) {
    const bool stateless = static_cast<bool>(stateless_end);
    std::vector<SseEvent> first;
    SseStream::Read got;
    do {
        got = stream->read_after(0, first, 1s);
    } while (got == SseStream::Read::Idle && !stateless);
    if (got == SseStream::Read::Events && stream->finished() && stream->last_seq() == 1) {
        hs->forget_stream(stream);
        res.status = stateless ? stateless_status(first.front().data) : 200;
        res.set_content(first.front().data, "application/json");
        if (stateless) stateless_end();
        return;
    }
    if (got != SseStream::Read::Events && got != SseStream::Read::Idle) {
        if (stateless) stateless_end();
        if (got == SseStream::Read::Finished) return refuse(res, 200, "Request cancelled by the client", -32800);
        return refuse_busy(res, 503, "Service Unavailable: the session ended");
    }
    auto state = std::make_shared<StreamState>();
    state->session = hs;
    state->stream = stream;
    state->reader = stream->attach();
    state->prime = !stateless && primes(*hs);
    state->with_ids = !stateless;
    if (stateless) {
        state->keep_alive = kStatelessKeepAlive;
        state->on_end = stateless_end;
    }
    state->use = std::make_unique<HttpSession::Use>(hs);
    stream_events(res, state);
}

// GET and DELETE act on a 2025 session; without one there is nothing to
// act on in either era (2026-07-28 has no GET stream and no sessions).
bool refuse_without_session(const httplib::Request& req, httplib::Response& res) {
    if (req.has_header("MCP-Session-Id")) return false;
    res.set_header("Allow", "POST");
    refuse(res, 405, "Method Not Allowed: " + req.method + " needs an MCP-Session-Id (a 2025-11-25 session); "
                     "protocol 2026-07-28 uses POST only");
    return true;
}

void HttpServer::on_get(const httplib::Request& req, httplib::Response& res) {
    auto who = admit(req, res);
    if (!who) return;
    if (refuse_without_session(req, res)) return;
    auto hs = session_for(req, res, *who);
    if (!hs) return;
    if (!accepts(req, "text/event-stream"))
        return refuse(res, 406, "Not Acceptable: GET opens an SSE stream; the Accept header must allow text/event-stream");

    std::shared_ptr<SseStream> stream;
    std::uint64_t after = 0;
    if (req.has_header("Last-Event-ID")) {
        std::string last = req.get_header_value("Last-Event-ID");
        auto id = parse_event_id(last);
        stream = id ? hs->find_stream(id->stream) : nullptr;
        if (!stream || id->seq > stream->last_seq())
            return refuse(res, 400, "Bad Request: Last-Event-ID '" + last +
                                        "' names no event of a stream this session keeps (the last 16 POST streams and the GET stream)");
        std::vector<SseEvent> probe;
        if (stream->read_after(id->seq, probe, 0ms) == SseStream::Read::Overwritten)
            return refuse(res, 410, "Gone: the events after '" + last + "' were overwritten; each stream keeps its last " +
                                        std::to_string(http_.sse_buffer_events) + " events (server.http.sse_buffer_events)");
        after = id->seq;
    } else {
        stream = hs->standalone_stream();
        after = stream->delivered();
    }
    if (get_streams_ >= http_.max_sse_streams || hs->get_streams >= http_.max_sse_streams_per_session)
        return refuse_busy(res, 429, "Too Many Requests: too many open SSE streams (server.http.max_sse_streams " +
                                         std::to_string(http_.max_sse_streams) + ", per session " +
                                         std::to_string(http_.max_sse_streams_per_session) + ")");
    ++get_streams_;
    ++hs->get_streams;
    auto state = std::make_shared<StreamState>();
    state->session = hs;
    state->stream = stream;
    state->after = after;
    state->reader = stream->attach();
    state->prime = primes(*hs);
    state->use = std::make_unique<HttpSession::Use>(hs);
    state->on_end = [this, hs] {
        --get_streams_;
        --hs->get_streams;
    };
    stream_events(res, state);
}

void HttpServer::stream_events(httplib::Response& res, std::shared_ptr<StreamState> state) {
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");  // a proxy in front must not hold events back
    res.set_chunked_content_provider(
        "text/event-stream", [this, state](std::size_t, httplib::DataSink& sink) { return pump(*state, sink); },
        [state](bool) {
            // A dropped connection is not a cancellation in a 2025 session: the
            // call goes on and its events wait in the buffer for a GET with
            // Last-Event-ID. A stateless request's on_end cancels it.
            state->stream->detach(state->reader);
            if (state->on_end) state->on_end();
            state->use.reset();
        });
}

// Writes what the stream has next; false ends the response (the client left).
bool HttpServer::pump(StreamState& state, httplib::DataSink& sink) {
    auto write = [&](const std::string& text) { return sink.write(text.data(), text.size()); };
    if (state.prime) {
        // The priming event: an id to resume from before any message arrives.
        state.prime = false;
        return write("id: " + format_event_id(state.stream->name(), state.after) + "\nretry: " +
                     std::to_string(kRetryMs) + "\ndata: \n\n");
    }
    std::vector<SseEvent> events;
    switch (state.stream->read_after(state.after, events, state.keep_alive, state.reader)) {
        case SseStream::Read::Events:
            for (const auto& e : events) {
                std::string text = state.with_ids ? format_sse_event(state.stream->name(), e)
                                                  : "event: message\ndata: " + e.data + "\n\n";
                if (!write(text)) return false;
                state.after = e.seq;
                state.stream->mark_delivered(e.seq);
            }
            return true;
        case SseStream::Read::Idle:
            return write(": keep-alive\n\n");
        case SseStream::Read::Finished:
            sink.done();
            return true;
        case SseStream::Read::Closed:
            // Closing early: tell the client when to come back.
            write("retry: " + std::to_string(kRetryMs) + "\n\n");
            sink.done();
            return true;
        case SseStream::Read::Overwritten:
            // The reader fell a whole buffer behind; a resumption says so.
            sink.done();
            return true;
        case SseStream::Read::Superseded:
            sink.done();
            return true;
    }
    return false;
}

void HttpServer::on_delete(const httplib::Request& req, httplib::Response& res) {
    auto who = admit(req, res);
    if (!who) return;
    if (refuse_without_session(req, res)) return;
    if (!check_protocol_version(req, res)) return;
    auto hs = sessions_.remove(req.get_header_value("MCP-Session-Id"), who->principal.name);
    if (!hs) return refuse(res, 404, "Not Found: no such session", -32001);
    spdlog::info("http: session {} ended by the client", hs->id());
    hs->end();
    res.status = 200;
}

void HttpServer::on_readyz(httplib::Response& res) {
    bool ready;
    {
        std::lock_guard lock(ready_mutex_);
        auto now = std::chrono::steady_clock::now();
        if (now - ready_checked_ >= kReadyCacheFor) {
            Status st = http_.ready ? http_.ready() : Status{};
            if (!st) spdlog::warn("readyz: not ready: {}", st.error().what());
            ready_ = st.ok();
            ready_checked_ = now;
        }
        ready = ready_;
    }
    // The reason stays in the server's log: the endpoint is not behind auth.
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "not ready\n", "text/plain");
}

void HttpServer::expire_idle_sessions() {
    auto cutoff = HttpSession::Clock::now() - http_.session_idle_timeout;
    for (auto& hs : sessions_.take_idle(cutoff)) {
        spdlog::info("http: session {} expired after {} s idle", hs->id(),
                     std::chrono::duration_cast<std::chrono::seconds>(http_.session_idle_timeout).count());
        hs->end();
    }
}

// New work is refused from the first step; running calls get the grace
// period, then every session ends (cancelling what still runs and removing
// its workspace), and only then does the listener stop.
void HttpServer::shut_down() {
    draining_ = true;
    auto deadline = std::chrono::steady_clock::now() + http_.shutdown_grace;
    if (!calls_.wait_idle(deadline))
        spdlog::warn("http: {} requests still running after the grace period: cancelling them", calls_.used());
    for (auto& hs : sessions_.take_all()) hs->end();
    svr_->stop();
}

// SIGHUP: new tokens or keys, a new certificate. Each keeps its previous
// set when the new one does not load, and says why.
void HttpServer::reload() {
    spdlog::info("SIGHUP: reloading credentials");
    if (http_.authenticator) {
        if (Status st = http_.authenticator->reload(); !st)
            spdlog::error("reload: keeping the previous tokens or keys: {}", st.error().what());
        else
            spdlog::info("reload: authentication reloaded");
    }
    if (http_.tls) {
        if (Status st = http_.tls->reload(); !st)
            spdlog::error("reload: keeping the previous certificate: {}", st.error().what());
        else
            spdlog::info("reload: TLS certificate and key reloaded");
    }
}

// Which signal made `fd` readable: 0 when there was none to read.
int take_signal(int fd) {
    signalfd_siginfo info{};
    ssize_t n = ::read(fd, &info, sizeof info);
    return n == static_cast<ssize_t>(sizeof info) ? static_cast<int>(info.ssi_signo) : 0;
}

int HttpServer::run(int stop_fd) {
    std::atomic<bool> listening{true};
    std::thread listener([this, &listening] {
        if (!svr_->listen_after_bind()) spdlog::error("http: the listener stopped unexpectedly");
        listening = false;
    });
    spdlog::info("serving MCP over {} at {}://{}:{}{} ({})", http_.tls ? "HTTPS" : "HTTP", http_.tls ? "https" : "http",
                 http_.host.find(':') != std::string::npos ? "[" + http_.host + "]" : http_.host, http_.port, http_.path,
                 requires_authentication(http_) ? "authentication required" : "no authentication");
    bool signalled = false;
    while (listening && !signalled) {
        pollfd p{stop_fd, POLLIN, 0};
        if (::poll(&p, 1, 1000) > 0) {
            if (take_signal(stop_fd) == SIGHUP)
                reload();
            else
                signalled = true;
            continue;
        }
        expire_idle_sessions();
    }
    spdlog::info(signalled ? "signal received: shutting down" : "http: shutting down");
    shut_down();
    listener.join();
    return signalled ? 0 : 1;
}

}  // namespace

bool requires_authentication(const HttpOptions& options) {
    return options.authenticator && options.authenticator->mode() != AuthMode::None;
}

Status check_listen_address(const HttpOptions& options) {
    if (is_loopback_host(options.host) || requires_authentication(options)) return {};
    if (!options.allow_unauthenticated_remote)
        return make_error("listen", "refusing to serve " + options.host +
                                        " without authentication: anyone who reaches this address could run code. "
                                        "Listen on 127.0.0.1, configure authentication, or set "
                                        "server.http.allow_unauthenticated_remote: true to accept that risk");
    spdlog::warn("SERVING WITHOUT AUTHENTICATION ON {}: anyone who reaches this address can run code "
                 "(server.http.allow_unauthenticated_remote is true)", options.host);
    return {};
}

int serve_http(const HttpOptions& http, const SessionOptions& session, const tools::Registry& registry, int stop_fd) {
    ::signal(SIGPIPE, SIG_IGN);  // a vanished client is a write error, not a death
    if (Status st = check_listen_address(http); !st) {
        spdlog::error("cannot start: {}", st.error().what());
        return 1;
    }
    HttpServer server(http, session, registry);
    if (Status st = server.bind(); !st) {
        spdlog::error("cannot start: {}", st.error().what());
        return 1;
    }
    return server.run(stop_fd);
}

}  // namespace kiln::server
