#include "server/sse_stream.hpp"

#include <charconv>

namespace kiln::server {

std::string format_event_id(const std::string& stream, std::uint64_t seq) {
    return stream + "." + std::to_string(seq);
}

std::optional<EventId> parse_event_id(std::string_view text) {
    auto dot = text.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == text.size()) return std::nullopt;
    EventId id{std::string(text.substr(0, dot)), 0};
    const char* first = text.data() + dot + 1;
    const char* last = text.data() + text.size();
    auto [end, ec] = std::from_chars(first, last, id.seq);
    if (ec != std::errc() || end != last) return std::nullopt;
    return id;
}

std::string format_sse_event(const std::string& stream, const SseEvent& event) {
    // Serialized JSON holds no raw newline, so one data line carries it.
    std::string text = "id: " + format_event_id(stream, event.seq) + "\n";
    if (!event.data.empty()) text += "event: message\n";
    text += "data: " + event.data + "\n\n";
    return text;
}

SseStream::SseStream(std::string name, std::size_t capacity) : name_(std::move(name)), capacity_(capacity) {}

void SseStream::push(std::string data, bool last) {
    std::shared_ptr<void> released;
    {
        std::lock_guard lock(mutex_);
        events_.push_back({next_seq_++, std::move(data)});
        while (events_.size() > capacity_) events_.pop_front();
        if (last) {
            finished_ = true;
            released.swap(held_);
        }
    }
    cv_.notify_all();
}

void SseStream::finish() {
    std::shared_ptr<void> released;
    {
        std::lock_guard lock(mutex_);
        finished_ = true;
        released.swap(held_);
    }
    cv_.notify_all();
}

void SseStream::close_early() {
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
    }
    cv_.notify_all();
}

SseStream::Read SseStream::read_after(std::uint64_t after, std::vector<SseEvent>& out, std::chrono::milliseconds wait,
                                      std::uint64_t reader) {
    std::unique_lock lock(mutex_);
    auto superseded = [&] { return reader != 0 && reader != reader_; };
    auto available = [&] { return next_seq_ - 1 > after || closed_ || finished_ || superseded(); };
    if (!cv_.wait_for(lock, wait, available)) return Read::Idle;
    if (superseded()) return Read::Superseded;
    if (next_seq_ - 1 > after) {
        // The oldest event kept must directly follow the one the reader has.
        if (events_.empty() || events_.front().seq > after + 1) return Read::Overwritten;
        for (const auto& e : events_)
            if (e.seq > after) out.push_back(e);
        return Read::Events;
    }
    return closed_ ? Read::Closed : Read::Finished;
}

bool SseStream::finished() const {
    std::lock_guard lock(mutex_);
    return finished_;
}

std::uint64_t SseStream::last_seq() const {
    std::lock_guard lock(mutex_);
    return next_seq_ - 1;
}

std::uint64_t SseStream::delivered() const {
    std::lock_guard lock(mutex_);
    return delivered_;
}

void SseStream::mark_delivered(std::uint64_t seq) {
    std::lock_guard lock(mutex_);
    if (seq > delivered_) delivered_ = seq;
}

std::uint64_t SseStream::attach() {
    std::uint64_t reader;
    {
        std::lock_guard lock(mutex_);
        reader = reader_ = ++readers_;
    }
    cv_.notify_all();
    return reader;
}

void SseStream::detach(std::uint64_t reader) {
    std::lock_guard lock(mutex_);
    if (reader_ == reader) reader_ = 0;
}

void SseStream::hold_until_finished(std::shared_ptr<void> held) {
    std::lock_guard lock(mutex_);
    if (!finished_) held_ = std::move(held);
}

}  // namespace kiln::server
