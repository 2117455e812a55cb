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
    tools_.push_back(std::move(tool));
}

Tool* Registry::find(const std::string& name) const {
    for (const auto& t : tools_)
        if (t->def().name == name) return t.get();
    return nullptr;
}

ToolResult Registry::call(Tool& tool, const json& arguments, const CallContext& ctx) const {
    if (auto bad = check_schema(tool.def().input_schema, arguments)) {
        return ToolResult::error("Invalid arguments for tool '" + tool.def().name + "': " +
                                 (bad->path.empty() ? "arguments " + bad->message : bad->what()));
    }
    try {
        return tool.call(arguments, ctx);
    } catch (const std::exception& e) {
        spdlog::error("tool {} threw: {}", tool.def().name, e.what());
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
