#include "tools/conformance_fixtures.hpp"

#include <functional>

namespace kiln::tools {
namespace {

using nlohmann::json;

// A 1x1 PNG and a 44-byte silent WAV, base64: the smallest valid samples.
constexpr const char* kPng =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
constexpr const char* kWav = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=";

json image() { return {{"type", "image"}, {"data", kPng}, {"mimeType", "image/png"}}; }
json resource() {
    return {{"type", "resource"},
            {"resource", {{"uri", "test://embedded-resource"}, {"mimeType", "text/plain"}, {"text", "an embedded resource"}}}};
}

// One fixture: its name, what it does, and its result.
class Fixture final : public Tool {
public:
    Fixture(std::string name, std::string description, std::function<ToolResult(const CallContext&)> run)
        : def_{std::move(name), "Conformance fixture", std::move(description),
               {{"type", "object"}, {"properties", json::object()}},
               {{"type", "object"}},
               {true, false, true, false}},
          run_(std::move(run)) {}
    const ToolDef& def() const override { return def_; }
    ToolResult call(const json&, const CallContext& ctx) override { return run_(ctx); }

private:
    ToolDef def_;
    std::function<ToolResult(const CallContext&)> run_;
};

ToolResult with(std::string text, std::vector<json> extra = {}) {
    return ToolResult{std::move(text), json::object(), false, std::move(extra)};
}

}  // namespace

void register_conformance_fixtures(Registry& registry) {
    auto add = [&](const char* name, const char* description, std::function<ToolResult(const CallContext&)> run) {
        registry.add(std::make_unique<Fixture>(name, description, std::move(run)));
    };
    add("test_simple_text", "Returns one text item.", [](const CallContext&) { return with("This is a simple text response for testing."); });
    add("test_image_content", "Returns an image.", [](const CallContext&) { return with("an image", {image()}); });
    add("test_audio_content", "Returns audio.", [](const CallContext&) {
        return with("a sound", {{{"type", "audio"}, {"data", kWav}, {"mimeType", "audio/wav"}}});
    });
    add("test_embedded_resource", "Returns an embedded resource.", [](const CallContext&) { return with("a resource", {resource()}); });
    add("test_multiple_content_types", "Returns text, an image and a resource.",
        [](const CallContext&) { return with("mixed content", {image(), resource()}); });
    add("test_tool_with_logging", "Sends three log messages, then answers.", [](const CallContext& ctx) {
        for (const char* step : {"starting", "working", "done"}) ctx.log(LogLevel::Warning, std::string("fixture ") + step);
        return with("logged three messages");
    });
    add("test_tool_with_progress", "Reports progress three times, then answers.", [](const CallContext& ctx) {
        for (int i = 1; i <= 3; ++i) ctx.progress(i, 3);
        return with("reported progress");
    });
    add("test_elicitation", "Asks the client for a user name and email (elicitation/create).", [](const CallContext& ctx) {
        if (!ctx.request_fn) return ToolResult::error("no channel to the client", json::object());
        json schema = {{"type", "object"},
                       {"properties", {{"username", {{"type", "string"}}}, {"email", {{"type", "string"}}}}},
                       {"required", {"username", "email"}}};
        auto answer = ctx.request_fn("elicitation/create", {{"message", "Please provide your information"}, {"requestedSchema", schema}});
        if (!answer) return ToolResult::error("elicitation failed: " + answer.error().message, json::object());
        return with("User response: " + answer->dump());
    });
    add("test_error_handling", "Always fails.", [](const CallContext&) {
        return ToolResult::error("This tool intentionally returns an error for testing", json::object());
    });
}

}  // namespace kiln::tools
