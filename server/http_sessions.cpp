#include "server/http_sessions.hpp"

#include <sys/random.h>

#include <spdlog/spdlog.h>

#include <cerrno>

#include "server/jsonrpc.hpp"

namespace kiln::server {

using nlohmann::json;

namespace {

// POST streams stay resumable after their response until this many newer
// ones have finished.
constexpr std::size_t kKeptPostStreams = 16;

// A response (or a batch's array of them) ends the stream it answers.
bool is_response(const json& message) {
    return message.is_array() || (message.is_object() && message.contains("id") && !message.contains("method"));
}

Result<std::string> random_session_id() {
    unsigned char bytes[24];
    std::size_t got = 0;
    while (got < sizeof bytes) {
        ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return make_error("getrandom", "no random bytes for a session id", errno);
        got += static_cast<std::size_t>(n);
    }
    static const char* hex = "0123456789abcdef";
    std::string id;
    for (unsigned char b : bytes) {
        id.push_back(hex[b >> 4]);
        id.push_back(hex[b & 0xF]);
    }
    return id;
}

}  // namespace

HttpSession::HttpSession(std::string id, std::string principal, std::size_t buffer_events)
    : id_(std::move(id)), principal_(std::move(principal)), buffer_events_(buffer_events) {}

HttpSession::~HttpSession() { end(); }

void HttpSession::start(SessionOptions options, const tools::Registry& registry) {
    options.principal = principal_;
    session_ = std::make_unique<Session>(
        std::move(options), registry,
        [this](const json& message, const std::optional<json>& related) { deliver(message, related); }, id_);
}

void HttpSession::deliver(const json& message, const std::optional<json>& related) {
    std::string text = jsonrpc::serialize(message);
    std::lock_guard lock(mutex_);
    auto it = related ? routes_.find(related->dump()) : routes_.end();
    if (it == routes_.end()) {
        // Belongs to no open POST: the standalone stream carries it, buffered
        // until a GET reads it. Responses never go there.
        if (is_response(message)) {
            spdlog::debug("session {}: dropping a response no POST waits for", id_);
            return;
        }
        auto& g = streams_[kStandaloneStream];
        if (!g) g = std::make_shared<SseStream>(kStandaloneStream, buffer_events_);
        g->push(std::move(text));
        return;
    }
    auto stream = it->second.stream;
    bool last = it->first == it->second.final_key && is_response(message);
    stream->push(std::move(text), last);
    if (!last) return;
    std::erase_if(routes_, [&](const auto& kv) { return kv.second.stream == stream; });
    finished_post_streams_.push_back(stream->name());
    keep_bounded_history();
}

void HttpSession::keep_bounded_history() {
    while (finished_post_streams_.size() > kKeptPostStreams) {
        streams_.erase(finished_post_streams_.front());
        finished_post_streams_.pop_front();
    }
}

std::shared_ptr<SseStream> HttpSession::open_post_stream(const std::vector<std::string>& keys, const std::string& final_key) {
    std::lock_guard lock(mutex_);
    if (routes_.count(final_key)) return nullptr;
    for (const auto& k : keys)
        if (routes_.count(k)) return nullptr;
    auto stream = std::make_shared<SseStream>("p" + std::to_string(next_stream_++), buffer_events_);
    streams_[stream->name()] = stream;
    for (const auto& k : keys) routes_[k] = Route{stream, final_key};
    routes_[final_key] = Route{stream, final_key};
    return stream;
}

void HttpSession::end_route(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = routes_.find(key);
    if (it == routes_.end()) return;
    auto stream = it->second.stream;
    stream->finish();
    std::erase_if(routes_, [&](const auto& kv) { return kv.second.stream == stream; });
    finished_post_streams_.push_back(stream->name());
    keep_bounded_history();
}

void HttpSession::forget_stream(const std::shared_ptr<SseStream>& stream) {
    std::lock_guard lock(mutex_);
    streams_.erase(stream->name());
    std::erase(finished_post_streams_, stream->name());
}

std::shared_ptr<SseStream> HttpSession::standalone_stream() {
    std::lock_guard lock(mutex_);
    auto& g = streams_[kStandaloneStream];
    if (!g) g = std::make_shared<SseStream>(kStandaloneStream, buffer_events_);
    return g;
}

std::shared_ptr<SseStream> HttpSession::find_stream(const std::string& name) {
    std::lock_guard lock(mutex_);
    auto it = streams_.find(name);
    return it == streams_.end() ? nullptr : it->second;
}

HttpSession::Use::Use(std::shared_ptr<HttpSession> s) : session_(std::move(s)) {
    std::lock_guard lock(session_->mutex_);
    ++session_->users_;
    session_->last_used_ = Clock::now();
}

HttpSession::Use::~Use() {
    std::lock_guard lock(session_->mutex_);
    --session_->users_;
    session_->last_used_ = Clock::now();
}

bool HttpSession::idle_since(Clock::time_point cutoff) const {
    std::lock_guard lock(mutex_);
    return users_ == 0 && last_used_ < cutoff;
}

void HttpSession::end() {
    if (ended_.exchange(true)) return;
    // Outside our lock: the session's workers deliver while they finish.
    if (session_) session_->shutdown();
    std::lock_guard lock(mutex_);
    for (auto& [name, stream] : streams_) stream->close_early();
    routes_.clear();
}

Result<std::shared_ptr<HttpSession>> SessionTable::create(const std::string& principal, std::size_t buffer_events) {
    auto id = random_session_id();
    if (!id) return id.error();
    std::lock_guard lock(mutex_);
    if (sessions_.size() >= max_sessions_)
        return make_error("create session", std::to_string(sessions_.size()) + " sessions are open (limit " +
                                                std::to_string(max_sessions_) +
                                                ", server.http.max_sessions); end one with DELETE or wait for one to expire");
    auto s = std::make_shared<HttpSession>(*id, principal, buffer_events);
    sessions_[*id] = s;
    return s;
}

std::shared_ptr<HttpSession> SessionTable::find(const std::string& id, const std::string& principal) {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(id);
    // Another principal learns nothing, not even that the id exists.
    if (it == sessions_.end() || it->second->principal() != principal) return nullptr;
    return it->second;
}

std::shared_ptr<HttpSession> SessionTable::remove(const std::string& id, const std::string& principal) {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second->principal() != principal) return nullptr;
    auto s = it->second;
    sessions_.erase(it);
    return s;
}

std::vector<std::shared_ptr<HttpSession>> SessionTable::take_idle(HttpSession::Clock::time_point cutoff) {
    std::vector<std::shared_ptr<HttpSession>> idle;
    std::lock_guard lock(mutex_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        if (it->second->idle_since(cutoff)) {
            idle.push_back(it->second);
            it = sessions_.erase(it);
        } else {
            ++it;
        }
    }
    return idle;
}

std::vector<std::shared_ptr<HttpSession>> SessionTable::take_all() {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<HttpSession>> all;
    for (auto& [id, s] : sessions_) all.push_back(s);
    sessions_.clear();
    return all;
}

std::size_t SessionTable::size() const {
    std::lock_guard lock(mutex_);
    return sessions_.size();
}

}  // namespace kiln::server
