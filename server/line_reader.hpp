// Newline-delimited framing for the stdio transport, apart from the session
// so the line reader can be tested and fuzzed on its own.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace kiln::server {

// Reads lines from `in_fd` without ever buffering more than `max_bytes` of
// one message: a longer line is skipped to its newline and reported through
// `on_oversized`. Returns at EOF, on a read error, or when `stop_fd` (a
// signalfd or pipe, -1 for none) becomes readable.
class LineReader {
public:
    LineReader(int in_fd, std::size_t max_bytes, int stop_fd = -1);
    // Calls on_line / on_oversized for each message; returns why it stopped.
    enum class End { Eof, Stopped, Error };
    End run(const std::function<void(std::string_view)>& on_line,
            const std::function<void(std::size_t)>& on_oversized);

private:
    int in_fd_;
    std::size_t max_bytes_;
    int stop_fd_;
};

}  // namespace kiln::server
