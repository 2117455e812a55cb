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

// ---- Fixtures of the 2026-07-28 scenarios (multi round-trip requests) ----

json input(const char* method, json params) { return {{"method", method}, {"params", std::move(params)}}; }

json elicit(const char* message, const char* field, const char* type) {
    return input("elicitation/create", {{"message", message},
                                        {"requestedSchema", {{"type", "object"},
                                                             {"properties", {{field, {{"type", type}}}}},
                                                             {"required", {field}}}}});
}

json sample(const char* text, int max_tokens) {
    return input("sampling/createMessage",
                 {{"messages", {{{"role", "user"}, {"content", {{"type", "text"}, {"text", text}}}}}}, {"maxTokens", max_tokens}});
}

// The retry's answer to `key`, when it is an object.
const json* answered(const RoundTrip& rt, const char* key) {
    if (!rt.input_responses.is_object() || !rt.input_responses.contains(key) || !rt.input_responses[key].is_object())
        return nullptr;
    return &rt.input_responses[key];
}

// Asks for `requests`, with a signed requestState for `binding` when set.
ToolResult ask_for(RoundTrip& rt, json requests, const std::string& binding = {}) {
    rt.input_required = {{"inputRequests", std::move(requests)}};
    if (!binding.empty()) rt.input_required["requestState"] = rt.mint(binding);
    return with("input required");
}

// Whether the retry's requestState verifies for `binding`; when it does not
// the request is refused (Invalid params).
bool state_holds(RoundTrip& rt, const std::string& binding) {
    if (rt.request_state.empty()) {
        rt.refused = "the retry carries no requestState";
        return false;
    }
    if (auto refusal = rt.redeem(binding)) {
        rt.refused = *refusal;
        return false;
    }
    return true;
}

bool declared(const RoundTrip& rt, const char* capability) { return rt.client_capabilities.contains(capability); }

// A fixture that needs `capability`: without it the client gets
// MissingRequiredClientCapability, as the revision requires.
std::function<ToolResult(const CallContext&)> needs(const char* capability, std::function<ToolResult(RoundTrip&)> run) {
    return [capability, run](const CallContext& ctx) {
        if (!ctx.round_trip) return ToolResult::error("this fixture answers protocol 2026-07-28 requests only", json::object());
        if (capability && !declared(*ctx.round_trip, capability)) {
            ctx.round_trip->missing_capabilities = {{capability, json::object()}};
            return ToolResult::error("missing capability", json::object());
        }
        return run(*ctx.round_trip);
    };
}

std::string text_of(const json& sampled) {
    return sampled.contains("content") && sampled["content"].is_object() ? sampled["content"].value("text", "") : "";
}

void register_round_trip_fixtures(const std::function<void(const char*, const char*, std::function<ToolResult(const CallContext&)>)>& add) {
    add("test_input_required_result_elicitation", "Asks for a name, then greets.", needs("elicitation", [](RoundTrip& rt) {
        const json* a = answered(rt, "user_name");
        if (a && a->contains("content") && (*a)["content"].is_object() && (*a)["content"].contains("name"))
            return with("Hello, " + (*a)["content"]["name"].get<std::string>() + "!");
        return ask_for(rt, {{"user_name", elicit("What is your name?", "name", "string")}});
    }));
    add("test_input_required_result_sampling", "Asks the client's model a question.", needs("sampling", [](RoundTrip& rt) {
        if (const json* a = answered(rt, "capital_question")) return with(text_of(*a));
        return ask_for(rt, {{"capital_question", sample("What is the capital of France?", 100)}});
    }));
    add("test_input_required_result_list_roots", "Asks for the client's roots.", needs("roots", [](RoundTrip& rt) {
        const json* a = answered(rt, "client_roots");
        if (!a || !a->contains("roots") || !(*a)["roots"].is_array()) return ask_for(rt, {{"client_roots", input("roots/list", json::object())}});
        std::string uris;
        for (const auto& r : (*a)["roots"]) uris += (uris.empty() ? "" : ", ") + r.value("uri", "");
        return with("roots: " + uris);
    }));
    add("test_input_required_result_request_state", "Asks to confirm, with a signed requestState.", needs("elicitation", [](RoundTrip& rt) {
        if (!answered(rt, "confirm")) return ask_for(rt, {{"confirm", elicit("Please confirm", "ok", "boolean")}}, "fixture request_state");
        return state_holds(rt, "fixture request_state") ? with("state-ok") : with("refused");
    }));
    add("test_input_required_result_tampered_state", "Asks to confirm; refuses an altered requestState.", needs("elicitation", [](RoundTrip& rt) {
        if (!answered(rt, "confirm")) return ask_for(rt, {{"confirm", elicit("Please confirm", "ok", "boolean")}}, "fixture tampered_state");
        return state_holds(rt, "fixture tampered_state") ? with("state-ok") : with("refused");
    }));
    add("test_input_required_result_multiple_inputs", "Asks for three inputs at once.", needs("elicitation", [](RoundTrip& rt) {
        if (!answered(rt, "user_name") || !answered(rt, "greeting") || !answered(rt, "client_roots"))
            return ask_for(rt, {{"user_name", elicit("What is your name?", "name", "string")},
                                {"greeting", sample("Generate a greeting", 50)},
                                {"client_roots", input("roots/list", json::object())}},
                           "fixture multiple_inputs");
        return state_holds(rt, "fixture multiple_inputs") ? with("got all three inputs") : with("refused");
    }));
    add("test_input_required_result_multi_round", "Asks twice, each time with a new requestState.", needs("elicitation", [](RoundTrip& rt) {
        if (answered(rt, "step2")) return state_holds(rt, "fixture multi_round 2") ? with("both steps answered") : with("refused");
        if (answered(rt, "step1") && state_holds(rt, "fixture multi_round 1"))
            return ask_for(rt, {{"step2", elicit("Step 2: What is your favorite color?", "color", "string")}}, "fixture multi_round 2");
        if (!rt.refused.empty()) return with("refused");
        return ask_for(rt, {{"step1", elicit("Step 1: What is your name?", "name", "string")}}, "fixture multi_round 1");
    }));
    add("test_input_required_result_capabilities", "Asks only for what the client declared it can give.", needs(nullptr, [](RoundTrip& rt) {
        json requests = json::object();
        if (declared(rt, "elicitation")) requests["user_name"] = elicit("What is your name?", "name", "string");
        if (declared(rt, "sampling")) requests["greeting"] = sample("Generate a greeting", 50);
        if (declared(rt, "roots")) requests["client_roots"] = input("roots/list", json::object());
        if (requests.empty() || rt.input_responses.is_object()) return with("nothing (more) to ask");
        return ask_for(rt, std::move(requests));
    }));
    add("test_missing_capability", "Needs the client's sampling capability.", needs("sampling", [](RoundTrip&) {
        return with("sampling declared");
    }));
    add("test_streaming_elicitation", "Asks for a name through an InputRequiredResult.", needs("elicitation", [](RoundTrip& rt) {
        return ask_for(rt, {{"user_name", elicit("What is your name?", "name", "string")}});
    }));
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
    add("test_logging_tool", "Logs (only at a requested logLevel), then answers.", [](const CallContext& ctx) {
        ctx.log(LogLevel::Info, "fixture log message");
        return with("logged");
    });
    register_round_trip_fixtures(add);
}

}  // namespace kiln::tools
