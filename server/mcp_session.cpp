#include "server/mcp_session.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <limits>

#include "server/stdio_transport.hpp"

namespace kiln::server {

using nlohmann::json;
using namespace jsonrpc;

struct Session::InFlight {
    json id;
    std::string key;  // id.dump(): numbers and strings never collide
    std::stop_source stop;
    std::jthread worker;
    std::atomic<bool> done{false};
    std::atomic<bool> cancelled{false};
    std::mutex progress_mutex;
    double last_progress = -std::numeric_limits<double>::infinity();
    std::shared_ptr<Stateless> stateless;  // set: a stateless request's call
};

// What a legacy session keeps and one stateless request brings itself: who
// and what the client is, its log level, and its own workspace's key.
struct Session::Stateless {
    tools::SessionInfo info;
    std::optional<tools::LogLevel> log_level;  // none: the request gets no notifications/message
    tools::RoundTrip round_trip;
};

struct Session::Pending {
    bool done = false;
    json result;
    json error;
};

bool is_stateless_request(const Request& req) {
    if (req.method == "server/discover" || req.method == "subscriptions/listen") return true;
    const json& p = req.params;
    return p.is_object() && p.contains("_meta") && p["_meta"].is_object() && p["_meta"].contains(kMetaProtocolVersion);
}

std::string negotiate_version(const std::string& requested) {
    for (const char* v : kSupportedVersions)
        if (requested == v) return requested;
    return kSupportedVersions[0];
}

namespace {

// Collects the replies of one batch and sends them as one array once every
// element has answered (or chosen not to: notifications, cancelled calls).
struct BatchCollector {
    std::mutex mutex;
    json replies = json::array();
    std::size_t remaining = 0;
};

}  // namespace

Session::Session(SessionOptions options, const tools::Registry& registry, Sink sink, std::string session_id)
    : options_(std::move(options)),
      registry_(registry),
      sink_(std::move(sink)),
      min_log_level_(static_cast<int>(tools::LogLevel::Warning)),
      request_state_(options_.request_state ? options_.request_state : RequestStateSigner::ephemeral()) {
    info_.id = std::move(session_id);
    info_.principal = options_.principal;
}

Session::~Session() { shutdown(); }

std::size_t Session::inflight() const {
    std::lock_guard lock(calls_mutex_);
    return static_cast<std::size_t>(std::count_if(calls_.begin(), calls_.end(), [](const auto& c) { return !c->done; }));
}

void Session::send(const json& message, const std::optional<json>& related) { sink_(message, related); }

void Session::reject_oversized(std::size_t size_seen) {
    send(make_error(nullptr, kInvalidRequest,
                    "Invalid Request: message of at least " + std::to_string(size_seen) +
                        " bytes exceeds the limit of " + std::to_string(options_.max_message_bytes) +
                        " bytes (server.max_message_bytes)"),
         json(nullptr));
}

namespace {

// The request a single message's reply answers (null for an invalid one).
json reply_relation(const Message& message) {
    if (const auto* req = std::get_if<Request>(&message)) return req->id;
    if (const auto* bad = std::get_if<Invalid>(&message)) return bad->reply.value("id", json());
    return nullptr;
}

// A batch's reply answers all of its requests at once.
json batch_relation(const std::vector<Message>& messages) {
    json ids = json::array();
    for (const auto& m : messages)
        if (const auto* req = std::get_if<Request>(&m)) ids.push_back(req->id);
    return ids;
}

}  // namespace

void Session::handle_text(std::string_view text) { handle(parse(text)); }

void Session::handle(Parsed parsed) {
    if (!parsed.is_batch) {
        json related = reply_relation(parsed.messages.front());
        handle_message(std::move(parsed.messages.front()), [this, related](std::optional<json> r) {
            if (r) send(*r, related);
        });
        return;
    }
    // Batches were required by 2025-03-26 and removed from later revisions.
    json related = batch_relation(parsed.messages);
    if (!initialized_ || info_.protocol_version != "2025-03-26") {
        send(make_error(nullptr, kInvalidRequest,
                        "Invalid Request: batches are accepted only in sessions that negotiated protocol "
                        "version 2025-03-26" +
                            (initialized_ ? " (this session uses " + info_.protocol_version + ")" : std::string())),
             related);
        return;
    }
    auto batch = std::make_shared<BatchCollector>();
    batch->remaining = parsed.messages.size();
    Reply collect = [this, batch, related](std::optional<json> r) {
        std::lock_guard lock(batch->mutex);
        if (r) batch->replies.push_back(std::move(*r));
        if (--batch->remaining == 0 && !batch->replies.empty()) send(batch->replies, related);
    };
    for (auto& m : parsed.messages) handle_message(std::move(m), collect);
}

void Session::handle_message(Message message, const Reply& reply) {
    std::visit(
        [&](auto&& m) {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, Request>) {
                handle_request(m, reply);
            } else if constexpr (std::is_same_v<T, Notification>) {
                handle_notification(m);
                reply(std::nullopt);
            } else if constexpr (std::is_same_v<T, Response>) {
                handle_response(m);
                reply(std::nullopt);
            } else {
                reply(m.reply);
            }
        },
        std::move(message));
}

void Session::handle_request(const Request& req, const Reply& reply) {
    if (!req.params.is_null() && !req.params.is_object()) {
        reply(make_error(req.id, kInvalidParams, "Invalid params: MCP params must be an object"));
        return;
    }
    try {
        // A connection that opened with initialize stays legacy (the spec
        // scopes that choice to the stdio process or the HTTP session).
        if (!initialized_ && is_stateless_request(req)) {
            handle_stateless(req, reply);
            return;
        }
        if (req.method == "initialize") {
            if (initialized_) {
                reply(make_error(req.id, kInvalidRequest, "Invalid Request: the session is already initialized"));
                return;
            }
            json result = on_initialize(req);
            reply(result.contains("protocolVersion") ? make_result(req.id, result) : result);
            return;
        }
        if (req.method == "ping") {
            reply(make_result(req.id, json::object()));
            return;
        }
        if (!initialized_) {
            reply(make_error(req.id, kInvalidRequest,
                             "Invalid Request: the server is not initialized; send \"initialize\" first"));
            return;
        }
        if (req.method == "tools/list") {
            json result = on_tools_list(req);
            reply(result.contains("tools") ? make_result(req.id, result) : result);
        } else if (req.method == "tools/call") {
            on_tools_call(req, reply);
        } else if (req.method == "resources/list" && has_resources()) {
            reply(make_result(req.id, options_.resources->list()));
        } else if (req.method == "resources/templates/list" && has_resources()) {
            reply(make_result(req.id, options_.resources->list_templates()));
        } else if (req.method == "resources/read" && has_resources()) {
            on_resources_read(req, reply, false);
        } else if (req.method == "logging/setLevel") {
            json result = on_set_level(req);
            reply(result.contains("error") ? result : make_result(req.id, result));
        } else {
            reply(make_error(req.id, kMethodNotFound, "Method not found: " + req.method));
        }
    } catch (const std::exception& e) {
        spdlog::error("internal error handling {}: {}", req.method, e.what());
        reply(make_error(req.id, kInternalError, std::string("Internal error: ") + e.what()));
    }
}

json Session::capabilities() const {
    json capabilities = {{"tools", {{"listChanged", false}}}, {"logging", json::object()}};
    if (has_resources()) capabilities["resources"] = {{"listChanged", false}, {"subscribe", false}};
    return capabilities;
}

json Session::on_initialize(const Request& req) {
    const json& p = req.params;
    if (!p.is_object() || !p.contains("protocolVersion") || !p["protocolVersion"].is_string())
        return make_error(req.id, kInvalidParams, "Invalid params: \"protocolVersion\" must be a string, e.g. \"2025-11-25\"");
    if (p.contains("capabilities") && !p["capabilities"].is_object())
        return make_error(req.id, kInvalidParams, "Invalid params: \"capabilities\" must be an object");
    if (p.contains("clientInfo") && !p["clientInfo"].is_object())
        return make_error(req.id, kInvalidParams, "Invalid params: \"clientInfo\" must be an object");

    info_.protocol_version = negotiate_version(p["protocolVersion"].get<std::string>());
    client_capabilities_ = p.value("capabilities", json::object());
    info_.client_can_elicit = client_capabilities_.contains("elicitation");
    if (p.contains("clientInfo")) {
        info_.client_name = p["clientInfo"].value("name", "");
        info_.client_version = p["clientInfo"].value("version", "");
    }
    initialized_ = true;
    spdlog::info("session {}: client {} {} negotiated protocol {}", info_.id, info_.client_name,
                 info_.client_version, info_.protocol_version);
    json result = {{"protocolVersion", info_.protocol_version},
                   {"capabilities", capabilities()},
                   {"serverInfo", {{"name", "kiln"}, {"title", "Kiln code sandbox"}, {"version", options_.server_version}}}};
    if (!options_.instructions.empty()) result["instructions"] = options_.instructions;
    return result;
}

json Session::on_tools_list(const Request& req) {
    std::size_t offset = 0;
    const auto& tools = registry_.all();
    if (req.params.is_object() && req.params.contains("cursor")) {
        const json& c = req.params["cursor"];
        std::string text = c.is_string() ? c.get<std::string>() : "";
        // Cursors are opaque to clients; ours is "o:<offset>".
        bool ok = text.size() > 2 && text.rfind("o:", 0) == 0 &&
                  std::all_of(text.begin() + 2, text.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) &&
                  text.size() < 12;
        if (ok) offset = std::stoul(text.substr(2));
        if (!ok || offset > tools.size())
            return make_error(req.id, kInvalidParams, "Invalid params: unknown cursor " + c.dump() +
                                                          "; pass the nextCursor of the previous page");
    }
    json list = json::array();
    std::size_t end = std::min(tools.size(), offset + options_.page_size);
    for (std::size_t i = offset; i < end; ++i) list.push_back(tools[i]->def().to_json());
    json result = {{"tools", list}};
    if (end < tools.size()) result["nextCursor"] = "o:" + std::to_string(end);
    return result;
}

json Session::on_set_level(const Request& req) {
    const json& p = req.params;
    auto level = (p.is_object() && p.contains("level") && p["level"].is_string())
                     ? tools::parse_log_level(p["level"].get<std::string>())
                     : std::nullopt;
    if (!level)
        return make_error(req.id, kInvalidParams,
                          "Invalid params: \"level\" must be one of debug, info, notice, warning, error, "
                          "critical, alert, emergency");
    min_log_level_ = static_cast<int>(*level);
    return json::object();
}

void Session::reap_finished_calls() {
    std::lock_guard lock(calls_mutex_);
    calls_.remove_if([](const std::shared_ptr<InFlight>& c) {
        if (!c->done) return false;
        if (c->worker.joinable()) c->worker.join();
        return true;
    });
}

void Session::on_tools_call(const Request& req, const Reply& reply, std::shared_ptr<Stateless> stateless) {
    const json& p = req.params;
    if (!p.is_object() || !p.contains("name") || !p["name"].is_string()) {
        reply(make_error(req.id, kInvalidParams, "Invalid params: \"name\" must be the name of a tool (a string)"));
        return;
    }
    if (p.contains("arguments") && !p["arguments"].is_object()) {
        reply(make_error(req.id, kInvalidParams, "Invalid params: \"arguments\" must be an object"));
        return;
    }
    const std::string name = p["name"].get<std::string>();
    tools::Tool* tool = registry_.find(name);
    if (!tool) {
        std::string names;
        for (const auto& t : registry_.all()) names += (names.empty() ? "" : ", ") + t->def().name;
        reply(make_error(req.id, kInvalidParams, "Invalid params: unknown tool '" + name + "' (available: " + names + ")"));
        return;
    }
    auto call = admit_call(req, reply, stateless != nullptr);
    if (!call) return;
    call->stateless = std::move(stateless);
    json arguments = p.value("arguments", json::object());
    call->worker = std::jthread([this, call, tool, arguments, reply, req]() {
        tools::CallContext ctx = make_context(req, call);
        tools::ToolResult result = registry_.call(*tool, arguments, ctx);
        // A stateless request's workspace lives as long as the request: it
        // is gone by the time the client reads the answer.
        if (call->stateless && options_.on_close) options_.on_close(call->stateless->info.id);
        // A cancelled request gets no response (the client has moved on).
        if (call->cancelled) reply(std::nullopt);
        else if (call->stateless) reply(stateless_reply(call->id, *call->stateless, result));
        else reply(make_result(call->id, result.to_json()));
        call->done = true;
    });
}

std::shared_ptr<Session::InFlight> Session::admit_call(const Request& req, const Reply& reply, bool stateless) {
    reap_finished_calls();
    auto call = std::make_shared<InFlight>();
    call->id = req.id;
    call->key = req.id.dump();
    std::lock_guard lock(calls_mutex_);
    std::size_t running = 0;
    for (const auto& c : calls_) {
        if (c->done) continue;
        ++running;
        if (c->key == call->key) {
            reply(make_error(req.id, kInvalidRequest, "Invalid Request: id " + call->key + " is already in use by a running call"));
            return nullptr;
        }
    }
    if (closing_ || running >= options_.max_inflight_calls) {
        json busy = tools::ToolResult::error("Server busy: " + std::to_string(running) +
                                             " tool calls are already running (limit " +
                                             std::to_string(options_.max_inflight_calls) +
                                             ", server.max_inflight_calls). Retry when one finishes.")
                        .to_json();
        reply(make_result(req.id, stateless ? complete(busy) : busy));
        return nullptr;
    }
    calls_.push_back(call);
    return call;
}

tools::CallContext Session::make_context(const Request& req, const std::shared_ptr<InFlight>& call) {
    tools::CallContext ctx;
    ctx.stop = call->stop.get_token();
    ctx.session = call->stateless ? &call->stateless->info : &info_;
    json token;
    if (req.params.contains("_meta") && req.params["_meta"].is_object())
        token = req.params["_meta"].value("progressToken", json());
    if (token.is_string() || token.is_number_integer() || token.is_number_unsigned()) {
        std::weak_ptr<InFlight> weak = call;
        ctx.progress_fn = [this, token, weak](double progress, std::optional<double> total, const std::string& message) {
            auto c = weak.lock();
            if (!c || c->cancelled) return;
            std::lock_guard lock(c->progress_mutex);
            if (progress <= c->last_progress) return;  // the spec requires increasing values
            c->last_progress = progress;
            json params = {{"progressToken", token}, {"progress", progress}};
            if (total) params["total"] = *total;
            if (!message.empty()) params["message"] = message;
            send(make_notification("notifications/progress", params), c->id);
        };
    }
    if (call->stateless) {
        // No requests to the client in this era; logs only at the level
        // the request asked for, and none when it asked for none.
        ctx.round_trip = &call->stateless->round_trip;
        if (auto floor = call->stateless->log_level)
            ctx.log_fn = [this, related = req.id, floor = *floor](tools::LogLevel level, const json& data) {
                if (level < floor) return;
                send(make_notification("notifications/message",
                                       {{"level", tools::to_string(level)}, {"logger", "kiln"}, {"data", data}}),
                     related);
            };
        return ctx;
    }
    ctx.log_fn = [this, related = req.id](tools::LogLevel level, const json& data) {
        if (static_cast<int>(level) < min_log_level_) return;
        send(make_notification("notifications/message", {{"level", tools::to_string(level)}, {"logger", "kiln"}, {"data", data}}),
             related);
    };
    ctx.request_fn = [this, related = req.id, stop = ctx.stop](const std::string& method, const json& params) {
        return request_client(method, params, related, stop);
    };
    return ctx;
}

Result<json> Session::request_client(const std::string& method, const json& params, const json& related,
                                     std::stop_token stop) {
    if (method == "elicitation/create" && !info_.client_can_elicit)
        return make_error(method, "the client did not declare the elicitation capability");
    auto pending = std::make_shared<Pending>();
    std::string id;
    {
        std::lock_guard lock(pending_mutex_);
        if (closing_) return make_error(method, "the session is closing");
        id = "kiln-" + std::to_string(next_request_id_++);
        pending_[json(id).dump()] = pending;
    }
    send(make_request(id, method, params), related);
    std::unique_lock lock(pending_mutex_);
    while (!pending->done && !stop.stop_requested() && !closing_)
        pending_cv_.wait_for(lock, std::chrono::milliseconds(50));
    pending_.erase(json(id).dump());
    if (!pending->done) {
        lock.unlock();
        send(make_notification("notifications/cancelled", {{"requestId", id}, {"reason", "the tool call was cancelled"}}),
             related);
        return make_error(method, "cancelled before the client answered");
    }
    if (!pending->error.is_null()) return make_error(method, "the client answered with an error: " + pending->error.dump());
    return pending->result;
}

void Session::handle_response(const Response& resp) {
    std::lock_guard lock(pending_mutex_);
    auto it = pending_.find(resp.id.dump());
    if (it == pending_.end()) {
        spdlog::warn("session {}: response to unknown request id {}", info_.id, resp.id.dump());
        return;
    }
    it->second->done = true;
    it->second->result = resp.result;
    it->second->error = resp.error;
    pending_cv_.notify_all();
}

void Session::handle_notification(const Notification& note) {
    if (note.method == "notifications/cancelled") {
        on_cancelled(note.params);
    } else if (note.method == "notifications/initialized") {
        spdlog::debug("session {}: client initialized", info_.id);
    } else {
        spdlog::debug("session {}: ignoring notification {}", info_.id, note.method);
    }
}

void Session::on_cancelled(const json& params) {
    if (!params.is_object() || !params.contains("requestId")) return;
    const std::string key = params["requestId"].dump();
    std::lock_guard lock(calls_mutex_);
    for (auto& c : calls_) {
        if (c->key == key && !c->done) {
            spdlog::info("session {}: cancelling call {} ({})", info_.id, key, params.value("reason", "no reason given"));
            c->cancelled = true;
            c->stop.request_stop();
        }
    }
}

void Session::cancel_all() {
    std::lock_guard lock(calls_mutex_);
    for (auto& c : calls_) {
        if (c->done) continue;
        c->cancelled = true;
        c->stop.request_stop();
    }
}

void Session::shutdown() {
    if (closing_.exchange(true)) return;
    std::list<std::shared_ptr<InFlight>> calls;
    {
        std::lock_guard lock(calls_mutex_);
        // Running work ends; calls that still finish may answer while the
        // transport can carry it (only a client's cancellation silences one).
        for (auto& c : calls_) c->stop.request_stop();
        calls.swap(calls_);
    }
    {
        std::lock_guard lock(pending_mutex_);
        pending_cv_.notify_all();
    }
    for (auto& c : calls)
        if (c->worker.joinable()) c->worker.join();
    if (options_.on_close) options_.on_close(info_.id);
}

// ---- The stateless era (2026-07-28) ----

namespace {

// How long a client may keep what these answer (the caching utility's
// ttlMs): the tool list and the server's description change only when the
// server is upgraded; a resource's contents may change at any call.
constexpr std::int64_t kListTtlMs = 5 * 60 * 1000;
constexpr std::int64_t kReadTtlMs = 0;

json all_versions() {
    json versions = json::array();
    for (const char* v : kStatelessVersions) versions.push_back(v);
    for (const char* v : kSupportedVersions) versions.push_back(v);
    return versions;
}

bool is_stateless_version(const std::string& v) {
    return std::any_of(std::begin(kStatelessVersions), std::end(kStatelessVersions), [&](const char* s) { return v == s; });
}

json cacheable(json result, std::int64_t ttl_ms, const char* scope) {
    result["ttlMs"] = ttl_ms;
    result["cacheScope"] = scope;
    return result;
}

}  // namespace

// Refuses what the revision calls malformed: the version and the client's
// capabilities are required in every request's _meta.
std::optional<json> Session::stateless_refusal(const Request& req) const {
    const json meta = req.params.is_object() ? req.params.value("_meta", json()) : json();
    auto invalid = [&](const std::string& what) {
        return make_error(req.id, kInvalidParams, "Invalid params: _meta[\"" + what + "\"] " + (what == kMetaProtocolVersion ? "must be a string such as \"2026-07-28\"" : "must be an object") + "; protocol 2026-07-28 requires it in every request (or send \"initialize\" to use 2025-11-25)");
    };
    if (!meta.is_object() || !meta.contains(kMetaProtocolVersion) || !meta[kMetaProtocolVersion].is_string())
        return invalid(kMetaProtocolVersion);
    const std::string version = meta[kMetaProtocolVersion].get<std::string>();
    if (!is_stateless_version(version))
        return make_error(req.id, kUnsupportedProtocolVersion,
                          "Unsupported protocol version: \"" + version + "\" in _meta; per request Kiln speaks " +
                              std::string(kStatelessVersions[0]) + " (the 2025 revisions open with \"initialize\")",
                          {{"supported", all_versions()}, {"requested", version}});
    if (!meta.contains(kMetaClientCapabilities) || !meta[kMetaClientCapabilities].is_object())
        return invalid(kMetaClientCapabilities);
    if (meta.contains(kMetaClientInfo) && !meta[kMetaClientInfo].is_object()) return invalid(kMetaClientInfo);
    if (meta.contains(kMetaLogLevel) &&
        !(meta[kMetaLogLevel].is_string() && tools::parse_log_level(meta[kMetaLogLevel].get<std::string>())))
        return make_error(req.id, kInvalidParams,
                          "Invalid params: _meta[\"" + std::string(kMetaLogLevel) +
                              "\"] must be one of debug, info, notice, warning, error, critical, alert, emergency");
    return std::nullopt;
}

// The seam where a workspace handle will be looked up: until tools take
// one, each stateless request gets a workspace of its own, keyed by a fresh
// id and removed when the request ends.
std::shared_ptr<Session::Stateless> Session::stateless_scope(const Request& req) const {
    const json& meta = req.params["_meta"];
    auto scope = std::make_shared<Stateless>();
    tools::SessionInfo& info = scope->info;
    info.id = new_session_id("req");
    info.principal = options_.principal;
    info.protocol_version = meta[kMetaProtocolVersion].get<std::string>();
    info.client_can_elicit = meta[kMetaClientCapabilities].contains("elicitation");
    if (meta.contains(kMetaClientInfo)) {
        info.client_name = meta[kMetaClientInfo].value("name", "");
        info.client_version = meta[kMetaClientInfo].value("version", "");
    }
    if (meta.contains(kMetaLogLevel)) scope->log_level = tools::parse_log_level(meta[kMetaLogLevel].get<std::string>());
    tools::RoundTrip& rt = scope->round_trip;
    rt.input_responses = req.params.value("inputResponses", json());
    rt.request_state = req.params.value("requestState", "");
    rt.client_capabilities = meta[kMetaClientCapabilities];
    auto signer = request_state_;
    std::string principal = info.principal;
    rt.mint = [signer, principal](const std::string& binding) { return signer->mint(principal, binding); };
    rt.redeem = [signer, principal, state = rt.request_state](const std::string& binding) -> std::optional<std::string> {
        auto refusal = signer->redeem(state, principal, binding);
        if (!refusal) return std::nullopt;
        spdlog::warn("stateless request: requestState refused ({}) for {}", to_string(refusal->reason), principal);
        return refusal->message;
    };
    return scope;
}

json Session::complete(json result) const {
    result["resultType"] = "complete";
    if (!result.contains("_meta") || !result["_meta"].is_object()) result["_meta"] = json::object();
    result["_meta"][kMetaServerInfo] = {{"name", "kiln"}, {"version", options_.server_version}};
    return result;
}

// A stateless call's answer: a refused requestState or a capability the
// client lacks is the request's error, a request for input an interim
// result, anything else the tool's result.
json Session::stateless_reply(const json& id, const Stateless& scope, const tools::ToolResult& result) const {
    const tools::RoundTrip& rt = scope.round_trip;
    if (!rt.refused.empty()) return make_error(id, kInvalidParams, "Invalid params: requestState refused: " + rt.refused);
    if (!rt.missing_capabilities.is_null()) {
        std::string names;
        for (const auto& [name, _] : rt.missing_capabilities.items()) names += (names.empty() ? "" : ", ") + name;
        return make_error(id, kMissingRequiredClientCapability,
                          "Missing required client capability: " + names + " (declare it in _meta[\"" +
                              kMetaClientCapabilities + "\"])",
                          {{"requiredCapabilities", rt.missing_capabilities}});
    }
    if (rt.input_required.is_null()) return make_result(id, complete(result.to_json()));
    json interim = rt.input_required;
    interim["resultType"] = "input_required";
    return make_result(id, interim);
}

void Session::handle_stateless(const Request& req, const Reply& reply) {
    if (auto refusal = stateless_refusal(req)) return reply(*refusal);
    const std::string& m = req.method;
    const json& p = req.params;
    if (m == "server/discover") {
        reply(make_result(req.id, complete(on_discover())));
    } else if (m == "tools/list") {
        json r = on_tools_list(req);
        reply(r.contains("tools") ? make_result(req.id, complete(cacheable(r, kListTtlMs, "public"))) : r);
    } else if (m == "tools/call") {
        if (p.contains("inputResponses") && !p["inputResponses"].is_object())
            return reply(make_error(req.id, kInvalidParams, "Invalid params: \"inputResponses\" must be an object keyed by the inputRequests it answers"));
        if (p.contains("requestState") && !p["requestState"].is_string())
            return reply(make_error(req.id, kInvalidParams, "Invalid params: \"requestState\" must be the string the server returned, unchanged"));
        on_tools_call(req, reply, stateless_scope(req));
    } else if (m == "subscriptions/listen") {
        on_listen(req, reply);
    } else if (m == "resources/list" && has_resources()) {
        reply(make_result(req.id, complete(cacheable(options_.resources->list(), kListTtlMs, "public"))));
    } else if (m == "resources/templates/list" && has_resources()) {
        reply(make_result(req.id, complete(cacheable({{"resourceTemplates", json::array()}}, kListTtlMs, "public"))));
    } else if (m == "resources/read" && has_resources()) {
        on_resources_read(req, reply, true);
    } else {
        reply(make_error(req.id, kMethodNotFound,
                         "Method not found: " + m + " (protocol 2026-07-28 has no ping, logging/setLevel or "
                                                    "resources/subscribe; Kiln serves server/discover, tools/*, "
                                                    "resources/* and subscriptions/listen)"));
    }
}

json Session::on_discover() const {
    json result = {{"supportedVersions", all_versions()}, {"capabilities", capabilities()}};
    if (!options_.instructions.empty()) result["instructions"] = options_.instructions;
    return cacheable(result, kListTtlMs, "public");
}

void Session::on_resources_read(const Request& req, const Reply& reply, bool stateless) {
    const json& p = req.params;
    if (!p.is_object() || !p.contains("uri") || !p["uri"].is_string())
        return reply(make_error(req.id, kInvalidParams, "Invalid params: \"uri\" must be a string such as \"kiln://policy\""));
    // A stateless request has no session whose records it could read.
    tools::SessionInfo none;
    none.principal = options_.principal;
    auto contents = options_.resources->read(p["uri"].get<std::string>(), stateless ? none : info_);
    if (contents) {
        reply(make_result(req.id, stateless ? complete(cacheable(*contents, kReadTtlMs, "private")) : *contents));
        return;
    }
    // 2025-11-25 named -32002 for an unknown resource; 2026-07-28 uses
    // Invalid params for it and forbids -32002. A URI refused (outside the
    // workspace, too large) is an invalid parameter in both.
    const bool missing = contents.error().err == ENOENT;
    if (missing && !stateless)
        reply(make_error(req.id, -32002, "Resource not found: " + contents.error().what(), {{"uri", p["uri"]}}));
    else
        reply(make_error(req.id, kInvalidParams, (missing ? "Resource not found: " : "Invalid params: ") + contents.error().what(),
                         {{"uri", p["uri"]}}));
}

// Kiln's tool and resource lists do not change while it runs, and it has no
// resource subscriptions: it acknowledges with none of the requested types
// and holds the stream until the client cancels or the server shuts down.
void Session::on_listen(const Request& req, const Reply& reply) {
    const json& p = req.params;
    if (p.contains("notifications") && !p["notifications"].is_object())
        return reply(make_error(req.id, kInvalidParams, "Invalid params: \"notifications\" must be an object (the notification filter)"));
    auto call = admit_call(req, reply, true);
    if (!call) return;
    call->worker = std::jthread([this, call, reply] {
        json meta = {{kMetaSubscriptionId, call->id}};
        send(make_notification("notifications/subscriptions/acknowledged", {{"_meta", meta}, {"notifications", json::object()}}),
             call->id);
        std::mutex mutex;
        std::condition_variable_any cv;
        std::unique_lock lock(mutex);
        cv.wait(lock, call->stop.get_token(), [] { return false; });
        if (call->cancelled) reply(std::nullopt);
        else reply(make_result(call->id, {{"resultType", "complete"}, {"_meta", meta}}));
        call->done = true;
    });
}

}  // namespace kiln::server
