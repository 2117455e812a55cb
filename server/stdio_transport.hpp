// The stdio transport: newline-delimited JSON-RPC on stdin/stdout, one
// session per process. stdout carries nothing but protocol messages.
#pragma once

#include <string>

#include "common/unique_fd.hpp"
#include "server/line_reader.hpp"
#include "server/mcp_session.hpp"

namespace kiln::server {

// A fresh random session id such as "stdio-3f2a...".
std::string new_session_id(const std::string& prefix);

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and returns a
// signalfd that becomes readable when one arrives. Call it before any thread
// starts: threads inherit the mask, and a thread that left them unblocked
// would take the default action (death) instead of a clean shutdown. The
// HTTP transport reloads its credentials on SIGHUP; stdio has nothing to
// reload and ends cleanly on it, as on SIGTERM (a hangup means its client,
// on the other end of the pipes, is gone).
UniqueFd block_termination_signals();

// Serves one session on stdin/stdout until EOF or until `stop_fd` (from
// block_termination_signals: SIGINT, SIGTERM or SIGHUP) fires, then ends all running work. Returns the
// process exit status.
int serve_stdio(const SessionOptions& options, const tools::Registry& registry, int stop_fd);

}  // namespace kiln::server
