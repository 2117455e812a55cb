#include "tools/registry.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <stdexcept>

#include "tools/schema.hpp"

namespace kiln::tools {

using nlohmann::json;

json ToolDef::to_json() const {
    json out = {{"name", name}, {"title", title}, {"description", description}, {"inputSchema", input_schema}};
    if (!output_schema.is_null()) out["outputSchema"] = output_schema;
    out["annotations"] = {{"title", title},
                          {"readOnlyHint", annotations.read_only},
                          {"destructiveHint", annotations.destructive},
                          {"idempotentHint", annotations.idempotent},
                          {"openWorldHint", annotations.open_world}};
    return out;
}

json ToolResult::to_json() const {
    json content = json::array({{{"type", "text"}, {"text", text}}});
    for (const auto& c : extra_content) content.push_back(c);
    json out = {{"content", content}, {"isError", is_error}};
    if (!structured.is_null()) out["structuredContent"] = structured;
    return out;
}

ToolResult ToolResult::error(std::string text, json structured) {
    return ToolResult{std::move(text), std::move(structured), true, {}};
}

void Registry::add(std::unique_ptr<Tool> tool) {
    if (find(tool->def().name)) throw std::logic_error("tool registered twice: " + tool->def().name);
    try {
        input_checkers_.emplace_back(tool->def().input_schema);
    } catch (const std::invalid_argument& e) {
        throw std::logic_error("tool " + tool->def().name + ": inputSchema is " + e.what());
    }
    call_counts_.push_back(&metrics::tool_calls(tool->def().name));
    tools_.push_back(std::move(tool));
}

Tool* Registry::find(const std::string& name) const {
    for (const auto& t : tools_)
        if (t->def().name == name) return t.get();
    return nullptr;
}

namespace {

std::string violation_text(const SchemaViolation& v) {
    return v.path.empty() ? "arguments " + v.message : v.what();
}

// One line for one mistake; a list for several, so an agent fixes them all
// in its next call.
std::string invalid_arguments_text(const std::string& tool, const std::vector<SchemaViolation>& violations) {
    std::string text = "Invalid arguments for tool '" + tool + "'";
    if (violations.size() == 1) return text + ": " + violation_text(violations.front());
    text += " (" + std::to_string(violations.size()) + " problems):";
    for (const auto& v : violations) text += "\n- " + violation_text(v);
    return text;
}

}  // namespace

std::size_t Registry::index_of(const Tool& tool) const {
    for (std::size_t i = 0; i < tools_.size(); ++i)
        if (tools_[i].get() == &tool) return i;
    return tools_.size();
}

ToolResult Registry::call(Tool& tool, const json& arguments, const CallContext& ctx) const {
    auto outcome = metrics::ToolOutcome::Ok;
    ToolResult result = checked_call(tool, arguments, ctx, outcome);
    // A tool that is not registered (a test's own) has no series: only
    // registered names become label values.
    if (std::size_t i = index_of(tool); i < tools_.size()) call_counts_[i]->record(outcome);
    return result;
}

ToolResult Registry::checked_call(Tool& tool, const json& arguments, const CallContext& ctx,
                                  metrics::ToolOutcome& outcome) const {
    try {
        std::size_t i = index_of(tool);
        // Not one of ours (a test's own tool): compiled for this call only.
        auto violations = i < tools_.size() ? input_checkers_[i].check(arguments)
                                            : check_schema(tool.def().input_schema, arguments);
        if (!violations.empty()) {
            outcome = metrics::ToolOutcome::InvalidArguments;
            return ToolResult::error(invalid_arguments_text(tool.def().name, violations));
        }
        ToolResult result = tool.call(arguments, ctx);
        outcome = result.is_error ? metrics::ToolOutcome::Error : metrics::ToolOutcome::Ok;
        return result;
    } catch (const std::exception& e) {
        spdlog::error("tool {} threw: {}", tool.def().name, e.what());
        outcome = metrics::ToolOutcome::Exception;
        return ToolResult::error("Tool '" + tool.def().name + "' failed: " + e.what());
    }
}

namespace {
constexpr std::array<const char*, 8> kLevelNames = {"debug", "info", "notice", "warning",
                                                    "error", "critical", "alert", "emergency"};
}

std::string to_string(LogLevel level) { return kLevelNames[static_cast<std::size_t>(level)]; }

std::optional<LogLevel> parse_log_level(const std::string& name) {
    for (std::size_t i = 0; i < kLevelNames.size(); ++i)
        if (name == kLevelNames[i]) return static_cast<LogLevel>(i);
    return std::nullopt;
}

}  // namespace kiln::tools
