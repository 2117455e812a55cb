#include "tools/debug_tools.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace kiln::tools {
namespace {

using nlohmann::json;

class EchoTool final : public Tool {
public:
    const ToolDef& def() const override {
        static const ToolDef d{
            "debug_echo", "Echo (diagnostic)", "Returns its text argument, repeated. Test-only.",
            {{"type", "object"},
             {"properties",
              {{"text", {{"type", "string"}, {"maxLength", 1000}, {"description", "text to echo"}}},
               {"repeat", {{"type", "integer"}, {"minimum", 1}, {"maximum", 10}, {"default", 1}}}}},
             {"required", {"text"}},
             {"additionalProperties", false}},
            {{"type", "object"},
             {"properties", {{"text", {{"type", "string"}}}}},
             {"required", {"text"}}},
            {true, false, true, false}};
        return d;
    }
    ToolResult call(const json& args, const CallContext&) override {
        std::string out;
        for (int i = 0; i < args.value("repeat", 1); ++i) out += args["text"].get<std::string>();
        return {out, {{"text", out}}, false, {}};
    }
};

// Sleeps in steps, reporting progress after each and stopping early when the
// call is cancelled; the tests use it to prove concurrency and cancellation.
class SleepTool final : public Tool {
public:
    const ToolDef& def() const override {
        static const ToolDef d{
            "debug_sleep", "Sleep (diagnostic)", "Sleeps for `seconds`, in `steps` steps with progress. Test-only.",
            {{"type", "object"},
             {"properties",
              {{"seconds", {{"type", "number"}, {"minimum", 0}, {"maximum", 60}}},
               {"steps", {{"type", "integer"}, {"minimum", 1}, {"maximum", 100}}}}},
             {"required", {"seconds"}},
             {"additionalProperties", false}},
            {{"type", "object"},
             {"properties", {{"slept_ms", {{"type", "integer"}}}, {"cancelled", {{"type", "boolean"}}}}},
             {"required", {"slept_ms", "cancelled"}}},
            {true, false, true, false}};
        return d;
    }
    ToolResult call(const json& args, const CallContext& ctx) override {
        using namespace std::chrono;
        const int steps = args.value("steps", 1);
        const auto total = duration<double>(args["seconds"].get<double>());
        const auto start = steady_clock::now();
        std::mutex m;
        std::condition_variable_any cv;
        bool cancelled = false;
        for (int i = 1; i <= steps && !cancelled; ++i) {
            auto until = start + duration_cast<steady_clock::duration>(total * i / steps);
            std::unique_lock lock(m);
            cancelled = cv.wait_until(lock, ctx.stop, until, [] { return false; }) || ctx.stop.stop_requested();
            if (!cancelled) ctx.progress(i, steps, "step " + std::to_string(i) + " of " + std::to_string(steps));
        }
        auto slept = duration_cast<milliseconds>(steady_clock::now() - start).count();
        json sc = {{"slept_ms", slept}, {"cancelled", cancelled}};
        return {"slept " + std::to_string(slept) + " ms" + (cancelled ? " (cancelled)" : ""), sc, cancelled, {}};
    }
};

class FailTool final : public Tool {
public:
    const ToolDef& def() const override {
        static const ToolDef d{"debug_fail", "Fail (diagnostic)", "Always fails: throws inside the tool. Test-only.",
                               {{"type", "object"}, {"properties", json::object()}, {"additionalProperties", false}},
                               {{"type", "object"}, {"properties", json::object()}},
                               {true, false, true, false}};
        return d;
    }
    ToolResult call(const json&, const CallContext&) override { throw std::runtime_error("deliberate failure"); }
};

class LogTool final : public Tool {
public:
    const ToolDef& def() const override {
        static const ToolDef d{
            "debug_log", "Log (diagnostic)", "Sends one notifications/message at the given level. Test-only.",
            {{"type", "object"},
             {"properties",
              {{"level", {{"type", "string"}, {"enum", {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}}}},
               {"message", {{"type", "string"}, {"maxLength", 1000}}}}},
             {"required", {"level", "message"}},
             {"additionalProperties", false}},
            {{"type", "object"}, {"properties", {{"logged", {{"type", "boolean"}}}}}, {"required", {"logged"}}},
            {true, false, false, false}};
        return d;
    }
    ToolResult call(const json& args, const CallContext& ctx) override {
        ctx.log(*parse_log_level(args["level"].get<std::string>()), args["message"]);
        return {"logged", {{"logged", true}}, false, {}};
    }
};

}  // namespace

void register_debug_tools(Registry& registry) {
    registry.add(std::make_unique<EchoTool>());
    registry.add(std::make_unique<SleepTool>());
    registry.add(std::make_unique<FailTool>());
    registry.add(std::make_unique<LogTool>());
}

}  // namespace kiln::tools
