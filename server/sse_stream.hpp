// One server-sent-events stream of one HTTP session: the messages the
// server sent on it, kept in a bounded buffer so that a client whose
// connection dropped can ask for what it missed (GET with Last-Event-ID).
// Event ids are "<stream>.<seq>": unique across the session's streams, and
// they name the stream they belong to, so a resumption replays that stream
// only. Sequence 0 is the priming event, which carries no message.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::server {

struct SseEvent {
    std::uint64_t seq = 0;
    std::string data;  // one serialized JSON-RPC message (or batch)
};

struct EventId {
    std::string stream;
    std::uint64_t seq = 0;
};

std::string format_event_id(const std::string& stream, std::uint64_t seq);
// nullopt: not an id this server issued.
std::optional<EventId> parse_event_id(std::string_view text);

// The SSE wire form of one event (`id:`, `data:` lines, blank line).
std::string format_sse_event(const std::string& stream, const SseEvent& event);

class SseStream {
public:
    enum class Read {
        Events,       // `out` holds the events after the position asked for
        Finished,     // everything was read and the server sends nothing more
        Closed,       // the server is ending the stream early (shutdown)
        Idle,         // nothing new within the wait
        Overwritten,  // the buffer no longer holds the events asked for
        Superseded,   // another connection took the stream over
    };

    SseStream(std::string name, std::size_t capacity);

    const std::string& name() const { return name_; }
    // Appends a message; `last` marks the stream finished (a POST's response).
    void push(std::string data, bool last = false);
    // The server sends nothing more without a response (the client
    // cancelled the request): readers see Finished.
    void finish();
    // Shutdown: readers wake up, write `retry:` and leave.
    void close_early();
    // Events with seq > after, waiting up to `wait` for one. A `reader`
    // (from attach) that was taken over gets Superseded; 0 reads unattached.
    Read read_after(std::uint64_t after, std::vector<SseEvent>& out, std::chrono::milliseconds wait,
                    std::uint64_t reader = 0);
    bool finished() const;
    // The newest seq pushed (0: none yet).
    std::uint64_t last_seq() const;
    // The newest seq written to a connection; a fresh GET starts after it.
    std::uint64_t delivered() const;
    void mark_delivered(std::uint64_t seq);

    // One connection reads a stream at a time. A new one takes over (the
    // old one is usually a dropped connection the server has not noticed
    // yet): attach() returns its reader number, and the previous reader
    // leaves at its next read, so no message goes out on two connections.
    std::uint64_t attach();
    void detach(std::uint64_t reader);

    // Released when the stream finishes: whatever the stream's call holds
    // (a slot of the global call limit).
    void hold_until_finished(std::shared_ptr<void> held);

private:
    const std::string name_;
    const std::size_t capacity_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<SseEvent> events_;
    std::uint64_t next_seq_ = 1;
    std::uint64_t delivered_ = 0;
    std::uint64_t readers_ = 0;
    bool finished_ = false;
    bool closed_ = false;
    std::uint64_t reader_ = 0;  // the attached reader; 0: none
    std::shared_ptr<void> held_;
};

}  // namespace kiln::server
