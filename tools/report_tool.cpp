#include "tools/report_tool.hpp"

namespace kiln::tools {
namespace {

using nlohmann::json;

// The report's JSON structure (docs/threat-model.md, "Selftest"), as the
// tool's outputSchema.
json evidence_schema() {
    json str = {{"type", "string"}};
    return {{"type", "array"},
            {"items", {{"type", "object"},
                       {"properties", {{"probe", str}, {"tried", str}, {"answer", str}}},
                       {"required", {"probe", "tried", "answer"}}}}};
}

json report_schema() {
    json str = {{"type", "string"}};
    json control = {{"type", "object"},
                    {"properties", {{"id", str}, {"name", str},
                                    {"status", {{"type", "string"}, {"enum", {"in_force", "degraded", "missing"}}}},
                                    {"required", {{"type", "boolean"}}}, {"summary", str}, {"evidence", evidence_schema()}}},
                    {"required", {"id", "name", "status", "required", "summary", "evidence"}}};
    json threat = {{"type", "object"},
                   {"properties", {{"id", str}, {"name", str}, {"score", {{"type", "number"}}}, {"level", str},
                                   {"mitigated", {{"type", "boolean"}}}, {"formula", {{"type", "object"}}}}},
                   {"required", {"id", "name", "score", "level", "mitigated", "formula"}}};
    return {{"type", "object"},
            {"properties", {{"runtime", str}, {"rootless", {{"type", "boolean"}}}, {"lsm", str}, {"cgroup", str},
                            {"policy", str}, {"limits", {{"type", "object"}}},
                            {"controls", {{"type", "array"}, {"items", control}}},
                            {"threats", {{"type", "array"}, {"items", threat}}},
                            {"missing_required", {{"type", "array"}, {"items", str}}},
                            {"notes", {{"type", "array"}, {"items", str}}}, {"duration_ms", {{"type", "integer"}}}}},
            {"required", {"runtime", "controls", "threats", "missing_required", "duration_ms"}}};
}

class SecurityReportTool final : public Tool {
public:
    explicit SecurityReportTool(SelftestReports& reports) : reports_(reports) {}

    const ToolDef& def() const override {
        static const ToolDef d{
            "security_report", "Security report (live selftest)",
            "Measures now which controls C001-C013 are in force: probes in real jails with the active policy, the "
            "validator, the audit log and the host's swap. Returns each control's status (in_force, degraded, "
            "missing) with the evidence of what was tried and what the kernel answered, and each threat's live "
            "score. Nothing of the workspace is touched; one selftest record is appended to the audit log.",
            {{"type", "object"}, {"properties", json::object()}, {"additionalProperties", false}},
            report_schema(),
            {true, false, false, false}};
        return d;
    }

    ToolResult call(const json&, const CallContext&) override {
        auto report = reports_.measure();
        if (!report) return ToolResult::error("security_report: " + report.error().what());
        return {security::selftest::to_table(*report), security::selftest::to_json(*report), false, {}};
    }

private:
    SelftestReports& reports_;
};

}  // namespace

Result<security::selftest::Report> SelftestReports::measure() {
    auto report = security::selftest::run(options_);
    if (report) {
        std::lock_guard lock(mu_);
        latest_ = security::selftest::to_json(*report);
    }
    return report;
}

json SelftestReports::latest() const {
    std::lock_guard lock(mu_);
    return latest_;
}

void register_report_tool(Registry& registry, SelftestReports& reports) {
    registry.add(std::make_unique<SecurityReportTool>(reports));
}

}  // namespace kiln::tools
