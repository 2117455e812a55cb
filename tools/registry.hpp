// The tool registry: every MCP tool declares its contract (name, schemas,
// annotations) once, and the registry checks arguments against the input
// schema before the tool runs (control C004 starts here).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/kiln_metrics.hpp"
#include "common/result.hpp"
#include "tools/schema.hpp"

namespace kiln::tools {

struct Annotations {
    bool read_only = false;
    bool destructive = false;
    bool idempotent = false;
    bool open_world = false;
};

struct ToolDef {
    std::string name;
    std::string title;
    std::string description;
    nlohmann::json input_schema;
    nlohmann::json output_schema;
    Annotations annotations;

    nlohmann::json to_json() const;  // the tools/list entry
};

// What a tool knows of the MCP session that called it.
struct SessionInfo {
    std::string id;
    std::string protocol_version;
    std::string client_name;
    std::string client_version;
    bool client_can_elicit = false;
    std::string principal;  // who the transport authenticated ("local" on stdio)
};

// A stateless (MCP 2026-07-28) call's multi round-trip request: what the
// client's retry brought, and where a tool that needs the client's input
// (an approval) leaves its InputRequiredResult instead of sending a request
// to the client, which that revision no longer has.
struct RoundTrip {
    nlohmann::json input_responses;  // the retry's inputResponses (an object), or null
    std::string request_state;       // the retry's requestState, "" on a first attempt
    // A signed state for `binding` (what the tool will ask about, e.g. the
    // code's hash), bound to the caller and an expiry.
    std::function<std::string(const std::string& binding)> mint;
    // Verifies request_state for `binding` and uses it up; the refusal's
    // text, or nullopt when it is valid.
    std::function<std::optional<std::string>(const std::string& binding)> redeem;

    // What the client declared it can do (_meta clientCapabilities): a tool
    // asks only for input the client can give.
    nlohmann::json client_capabilities = nlohmann::json::object();

    // Set by the tool; the session answers with the first that is set:
    std::string refused;                  // the retry's state failed: Invalid params
    nlohmann::json missing_capabilities;  // {"sampling": {}}: MissingRequiredClientCapability
    nlohmann::json input_required;        // {inputRequests, requestState}: InputRequiredResult
};

enum class LogLevel { Debug, Info, Notice, Warning, Error, Critical, Alert, Emergency };

// Channels from a running tool back to the client. Every member may be
// empty (no progress token, say); use the helpers, which check.
struct CallContext {
    std::stop_token stop;  // stop requested: the client cancelled or went away
    const SessionInfo* session = nullptr;
    std::function<void(double progress, std::optional<double> total, const std::string& message)> progress_fn;
    std::function<void(LogLevel, const nlohmann::json& data)> log_fn;
    // Sends a request to the client (elicitation/create) and waits for its
    // answer; the error says why there is none (unsupported, cancelled).
    std::function<Result<nlohmann::json>(const std::string& method, const nlohmann::json& params)> request_fn;
    // Set on a stateless call only (request_fn is then empty).
    RoundTrip* round_trip = nullptr;

    void progress(double done, std::optional<double> total = {}, const std::string& message = {}) const {
        if (progress_fn) progress_fn(done, total, message);
    }
    void log(LogLevel level, const nlohmann::json& data) const {
        if (log_fn) log_fn(level, data);
    }
};

struct ToolResult {
    std::string text;                 // content[0].text, what an LLM reads
    nlohmann::json structured;        // structuredContent (null: none)
    bool is_error = false;
    std::vector<nlohmann::json> extra_content;  // embedded resources, images...

    nlohmann::json to_json() const;   // the CallToolResult
    static ToolResult error(std::string text, nlohmann::json structured = nullptr);
};

class Tool {
public:
    virtual ~Tool() = default;
    virtual const ToolDef& def() const = 0;
    // Called with arguments that already passed def().input_schema.
    virtual ToolResult call(const nlohmann::json& arguments, const CallContext& ctx) = 0;
};

class Registry {
public:
    // Throws std::logic_error for a second tool of the same name or an
    // inputSchema that cannot be compiled.
    void add(std::unique_ptr<Tool> tool);
    Tool* find(const std::string& name) const;
    const std::vector<std::unique_ptr<Tool>>& all() const { return tools_; }

    // Checks the arguments against the tool's schema, then runs the tool.
    // Schema failures and exceptions become isError results; a schema
    // failure lists every wrong field, each with what it must be. Each
    // call of a registered tool counts in kiln_tool_calls_total.
    ToolResult call(Tool& tool, const nlohmann::json& arguments, const CallContext& ctx) const;

private:
    ToolResult checked_call(Tool& tool, const nlohmann::json& arguments, const CallContext& ctx,
                            metrics::ToolOutcome& outcome) const;
    // The registered tool's index, or tools_.size() for a test's own tool.
    std::size_t index_of(const Tool& tool) const;

    std::vector<std::unique_ptr<Tool>> tools_;
    std::vector<SchemaChecker> input_checkers_;  // input_checkers_[i] checks tools_[i]
    std::vector<metrics::ToolCalls*> call_counts_;  // call_counts_[i] counts tools_[i]
};

std::string to_string(LogLevel level);
std::optional<LogLevel> parse_log_level(const std::string& name);

}  // namespace kiln::tools
