// The stdio transport: newline-delimited JSON-RPC on stdin/stdout, one
// session per process. stdout carries nothing but protocol messages.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "common/unique_fd.hpp"
#include "server/mcp_session.hpp"

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

// A fresh random session id such as "stdio-3f2a...".
std::string new_session_id(const std::string& prefix);

// Blocks SIGINT and SIGTERM in the calling thread and returns a signalfd
// that becomes readable when one arrives. Call it before any thread starts:
// threads inherit the mask, and a thread that left them unblocked would take
// the default action (death) instead of a clean shutdown.
UniqueFd block_termination_signals();

// Serves one session on stdin/stdout until EOF or until `stop_fd` (from
// block_termination_signals) fires, then ends all running work. Returns the
// process exit status.
int serve_stdio(const SessionOptions& options, const tools::Registry& registry, int stop_fd);

}  // namespace kiln::server
