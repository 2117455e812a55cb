// One MCP session: the protocol state machine between one client and the
// tool registry. Transport-agnostic: the transport feeds it framed texts and
// gives it a sink for outgoing messages (stdio: the one connection; HTTP:
// one per Mcp-Session-Id).
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/kiln_metrics.hpp"
#include "common/request_state.hpp"
#include "server/jsonrpc.hpp"
#include "tools/registry.hpp"
#include "tools/resources.hpp"

namespace kiln::server {

// The revisions that open with `initialize` (legacy, one session per
// connection) and the stateless ones, whose every request carries its
// version in _meta (docs/architecture.md, "Two protocol eras").
inline constexpr const char* kSupportedVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};
inline constexpr const char* kStatelessVersions[] = {"2026-07-28"};

// The _meta keys of a stateless request and result.
inline constexpr const char* kMetaProtocolVersion = "io.modelcontextprotocol/protocolVersion";
inline constexpr const char* kMetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities";
inline constexpr const char* kMetaClientInfo = "io.modelcontextprotocol/clientInfo";
inline constexpr const char* kMetaLogLevel = "io.modelcontextprotocol/logLevel";
inline constexpr const char* kMetaServerInfo = "io.modelcontextprotocol/serverInfo";
inline constexpr const char* kMetaSubscriptionId = "io.modelcontextprotocol/subscriptionId";

// Error codes the 2026-07-28 revision defines.
inline constexpr int kHeaderMismatch = -32020;
inline constexpr int kMissingRequiredClientCapability = -32021;
inline constexpr int kUnsupportedProtocolVersion = -32022;

// Whether a request speaks the stateless revision: it carries a protocol
// version in its _meta (or is one of the methods only that revision has).
bool is_stateless_request(const jsonrpc::Request& req);

struct SessionOptions {
    std::size_t max_message_bytes = 4u << 20;
    unsigned max_inflight_calls = 16;
    unsigned page_size = 50;
    std::string server_version = "0.0.0";
    std::string instructions;
    // Called once when the session ends (the workspace goes with it).
    std::function<void(const std::string& session_id)> on_close;
    // Read-only resources; null or empty: the capability is not declared.
    const tools::ResourceSet* resources = nullptr;
    // Who the transport says is on the other end; written into every audit
    // record of the session's calls ("local" for stdio).
    std::string principal = "local";
    // Signs the requestState of stateless approvals; null: a key made for
    // this process alone (what only this process can finish).
    std::shared_ptr<RequestStateSigner> request_state;
};

// Picks the protocol version to answer with: the client's when supported,
// else the newest Kiln speaks.
std::string negotiate_version(const std::string& requested);

class Session {
public:
    // Every outgoing message, with the id of the client request it belongs
    // to: a response, or a progress, log or elicitation message sent while
    // that call runs. A batch's reply carries the array of the batch's
    // request ids; a reply to a message without a usable id carries null.
    // No related request (nullopt): the message belongs to no call. stdio
    // ignores it; HTTP routes by it (the POST's stream or the GET stream).
    using Sink = std::function<void(const nlohmann::json& message, const std::optional<nlohmann::json>& related)>;

    Session(SessionOptions options, const tools::Registry& registry, Sink sink, std::string session_id);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Handles one framed message (or batch) from the client.
    void handle_text(std::string_view text);
    // The same for a text the transport has already parsed (HTTP looks at a
    // POST's messages to choose its answer before the session sees them).
    void handle(jsonrpc::Parsed parsed);
    // The transport refused a message over the size limit without reading it.
    void reject_oversized(std::size_t size_seen);
    // Cancels every in-flight call, fails pending server-to-client requests
    // and waits for the workers. Idempotent.
    void shutdown();
    // The client went away (a stateless request's stream closed): every
    // call stops and none answers any more.
    void cancel_all();

    const tools::SessionInfo& info() const { return info_; }
    std::size_t inflight() const;

private:
    using Reply = std::function<void(std::optional<nlohmann::json>)>;
    struct InFlight;
    struct Pending;
    struct Stateless;

    void handle_message(jsonrpc::Message message, const Reply& reply);
    void handle_request(const jsonrpc::Request& req, const Reply& reply);
    void handle_notification(const jsonrpc::Notification& note);
    void handle_response(const jsonrpc::Response& resp);

    nlohmann::json on_initialize(const jsonrpc::Request& req);
    nlohmann::json on_tools_list(const jsonrpc::Request& req);
    void on_tools_call(const jsonrpc::Request& req, const Reply& reply, std::shared_ptr<Stateless> stateless = nullptr);
    nlohmann::json on_set_level(const jsonrpc::Request& req);
    void on_cancelled(const nlohmann::json& params);

    // The stateless era: every request stands alone.
    void handle_stateless(const jsonrpc::Request& req, const Reply& reply);
    std::optional<nlohmann::json> stateless_refusal(const jsonrpc::Request& req) const;
    std::shared_ptr<Stateless> stateless_scope(const jsonrpc::Request& req) const;
    nlohmann::json complete(nlohmann::json result) const;
    nlohmann::json stateless_reply(const nlohmann::json& id, const Stateless& scope, const tools::ToolResult& result) const;
    nlohmann::json capabilities() const;
    nlohmann::json on_discover() const;
    void on_listen(const jsonrpc::Request& req, const Reply& reply);
    void on_resources_read(const jsonrpc::Request& req, const Reply& reply, bool stateless);
    // Starts a call's worker: at most max_inflight_calls, one per id.
    std::shared_ptr<InFlight> admit_call(const jsonrpc::Request& req, const Reply& reply, bool stateless);

    tools::CallContext make_context(const jsonrpc::Request& req, const std::shared_ptr<InFlight>& call);
    Result<nlohmann::json> request_client(const std::string& method, const nlohmann::json& params,
                                          const nlohmann::json& related, std::stop_token stop);
    void send(const nlohmann::json& message, const std::optional<nlohmann::json>& related);
    bool has_resources() const { return options_.resources && !options_.resources->empty(); }
    void reap_finished_calls();

    SessionOptions options_;
    const tools::Registry& registry_;
    Sink sink_;
    tools::SessionInfo info_;
    nlohmann::json client_capabilities_;

    std::atomic<bool> initialized_{false};
    std::atomic<bool> closing_{false};
    std::atomic<int> min_log_level_;

    mutable std::mutex calls_mutex_;
    std::list<std::shared_ptr<InFlight>> calls_;

    std::mutex pending_mutex_;
    std::condition_variable pending_cv_;
    std::map<std::string, std::shared_ptr<Pending>> pending_;
    std::uint64_t next_request_id_ = 1;

    std::shared_ptr<RequestStateSigner> request_state_;

    metrics::GaugeHold open_{metrics::sessions_active()};  // kiln_sessions_active
};

}  // namespace kiln::server
