// JSON-RPC 2.0 framing: turns one received text into a message or into the
// error response the spec requires, and builds responses. Nothing here
// knows MCP.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kiln::jsonrpc {

enum ErrorCode : int {
    kParseError = -32700,
    kInvalidRequest = -32600,
    kMethodNotFound = -32601,
    kInvalidParams = -32602,
    kInternalError = -32603,
};

struct Request {
    nlohmann::json id;  // string or number, echoed back exactly
    std::string method;
    nlohmann::json params;  // object, array or null when absent
};

struct Notification {
    std::string method;
    nlohmann::json params;
};

// A response from the peer to a request we sent (server-to-client requests
// such as elicitation/create).
struct Response {
    nlohmann::json id;
    nlohmann::json result;  // null when error is set
    nlohmann::json error;
};

// An incoming text that is not a valid message: the error to send back.
struct Invalid {
    nlohmann::json reply;
};

using Message = std::variant<Request, Notification, Response, Invalid>;

struct Limits {
    std::size_t max_depth = 64;  // nesting of arrays/objects
};

// Parses one framed message. A top-level array is a batch: each element is
// classified on its own (an empty batch is one Invalid).
struct Parsed {
    bool is_batch = false;
    std::vector<Message> messages;
};
Parsed parse(std::string_view text, const Limits& limits = {});

// Classifies one already-parsed JSON value.
Message classify(const nlohmann::json& value);

nlohmann::json make_result(const nlohmann::json& id, nlohmann::json result);
nlohmann::json make_error(const nlohmann::json& id, int code, const std::string& message,
                          nlohmann::json data = nullptr);
nlohmann::json make_request(const nlohmann::json& id, const std::string& method, nlohmann::json params);
nlohmann::json make_notification(const std::string& method, nlohmann::json params);

// Serializes without ever throwing: invalid UTF-8 in strings is replaced.
std::string serialize(const nlohmann::json& message);

}  // namespace kiln::jsonrpc
