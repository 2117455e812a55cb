// The HTTP transport's sessions: one server::Session per MCP-Session-Id,
// bound to the principal that created it, with its SSE streams and the
// routing of its outgoing messages onto them.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "server/mcp_session.hpp"
#include "server/sse_stream.hpp"

namespace kiln::server {

// The name of the stream that GET opens: messages that belong to no request.
inline constexpr const char* kStandaloneStream = "g";

class HttpSession {
public:
    using Clock = std::chrono::steady_clock;

    HttpSession(std::string id, std::string principal, std::size_t buffer_events);
    ~HttpSession();
    HttpSession(const HttpSession&) = delete;
    HttpSession& operator=(const HttpSession&) = delete;

    // Creates the protocol session; its messages are routed by deliver().
    void start(SessionOptions options, const tools::Registry& registry);
    Session& session() { return *session_; }
    const std::string& id() const { return id_; }
    const std::string& principal() const { return principal_; }

    // A stream for one POST: messages related to any of `keys` go on it, and
    // the response related to `final_key` finishes it. nullptr when a key is
    // already routed (a request id still running in this session).
    std::shared_ptr<SseStream> open_post_stream(const std::vector<std::string>& keys, const std::string& final_key);
    // The client cancelled the request: its stream ends without a response
    // (the session sends none), and what it held is released.
    void end_route(const std::string& key);
    // A POST answered as plain JSON needs no resumption.
    void forget_stream(const std::shared_ptr<SseStream>& stream);
    std::shared_ptr<SseStream> standalone_stream();
    std::shared_ptr<SseStream> find_stream(const std::string& name);

    // Requests and streams in progress keep a session from expiring.
    class Use {
    public:
        explicit Use(std::shared_ptr<HttpSession> s);
        ~Use();
        Use(const Use&) = delete;
        Use& operator=(const Use&) = delete;

    private:
        std::shared_ptr<HttpSession> session_;
    };
    bool idle_since(Clock::time_point cutoff) const;
    // GET streams open on this session (bounded per session).
    std::atomic<unsigned> get_streams{0};

    // Cancels running calls, removes the workspace (SessionOptions::on_close)
    // and ends every stream. Idempotent.
    void end();

private:
    void deliver(const nlohmann::json& message, const std::optional<nlohmann::json>& related);
    void keep_bounded_history();

    const std::string id_;
    const std::string principal_;
    const std::size_t buffer_events_;

    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<SseStream>> streams_;   // by name
    std::deque<std::string> finished_post_streams_;               // oldest first
    struct Route {
        std::shared_ptr<SseStream> stream;
        std::string final_key;
    };
    std::map<std::string, Route> routes_;  // related request id (JSON text) -> stream
    std::uint64_t next_stream_ = 1;
    unsigned users_ = 0;
    Clock::time_point last_used_ = Clock::now();
    std::atomic<bool> ended_{false};

    std::unique_ptr<Session> session_;  // last: destroyed first, its workers still deliver
};

class SessionTable {
public:
    explicit SessionTable(unsigned max_sessions) : max_sessions_(max_sessions) {}

    // A new session with a fresh id (192 bits from getrandom, hex).
    Result<std::shared_ptr<HttpSession>> create(const std::string& principal, std::size_t buffer_events);
    // The session with this id, only for the principal it is bound to.
    std::shared_ptr<HttpSession> find(const std::string& id, const std::string& principal);
    std::shared_ptr<HttpSession> remove(const std::string& id, const std::string& principal);
    std::vector<std::shared_ptr<HttpSession>> take_idle(HttpSession::Clock::time_point cutoff);
    std::vector<std::shared_ptr<HttpSession>> take_all();
    std::size_t size() const;

private:
    const unsigned max_sessions_;
    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<HttpSession>> sessions_;
};

}  // namespace kiln::server
