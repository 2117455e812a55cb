#include "tools/run_outcome.hpp"

#include <sstream>
#include <vector>

#include "common/hash.hpp"
#include "common/units.hpp"

namespace kiln::tools {
namespace {

using nlohmann::json;

// Where a field goes in the execution record: not at all (it is elsewhere
// in the record, or not the record's business), as is, or as the SHA-256 of
// its text under "<name>_sha256" (output: the log keeps proof, not data).
enum class InAudit { No, Value, Sha256 };

struct Field {
    const char* name;
    json schema;
    bool required;
    InAudit audit;
    json (*get)(const RunOutcome&);
};

json optional_int(const std::optional<int>& v) { return v ? json(*v) : json(nullptr); }

json files_json(const RunOutcome& o) {
    json out = json::array();
    for (const auto& c : o.files)
        out.push_back({{"path", c.path}, {"uri", rich::workspace_uri(c.path)}, {"mimeType", rich::mime_type(c.path)},
                       {"size", c.state.size}, {"change", c.created ? "created" : "changed"}});
    return out;
}

const std::vector<Field>& fields() {
    static const json integer = {{"type", "integer"}}, boolean = {{"type", "boolean"}}, str = {{"type", "string"}};
    static const json nullable_int = {{"type", json::array({"integer", "null"})}};
    static const json finding = {
        {"type", "object"},
        {"properties",
         {{"rule", str}, {"threat", str}, {"controls", {{"type", "array"}, {"items", str}}}, {"severity", str},
          {"line", integer}, {"column", integer}, {"message", str}, {"hint", str}, {"attack_signature", boolean}}},
        {"required", {"rule", "threat", "severity", "line", "message", "attack_signature"}}};
    static const std::vector<Field> table = {
        {"exit_code", nullable_int, true, InAudit::Value, [](const RunOutcome& o) { return optional_int(o.exec.exit_code); }},
        {"signal", nullable_int, true, InAudit::Value, [](const RunOutcome& o) { return optional_int(o.exec.signal); }},
        {"timed_out", boolean, true, InAudit::Value, [](const RunOutcome& o) { return json(o.exec.timed_out); }},
        {"oom_killed", boolean, true, InAudit::Value, [](const RunOutcome& o) { return json(o.exec.oom_killed); }},
        {"cancelled", boolean, true, InAudit::Value, [](const RunOutcome& o) { return json(o.exec.cancelled); }},
        {"stdout", str, true, InAudit::Sha256, [](const RunOutcome& o) { return json(o.exec.stdout_data); }},
        {"stderr", str, true, InAudit::Sha256, [](const RunOutcome& o) { return json(o.exec.stderr_data); }},
        {"stdout_truncated", boolean, true, InAudit::No, [](const RunOutcome& o) { return json(o.exec.stdout_truncated); }},
        {"stderr_truncated", boolean, true, InAudit::No, [](const RunOutcome& o) { return json(o.exec.stderr_truncated); }},
        {"stdout_bytes", integer, false, InAudit::Value, [](const RunOutcome& o) { return json(o.exec.stdout_bytes); }},
        {"stderr_bytes", integer, false, InAudit::Value, [](const RunOutcome& o) { return json(o.exec.stderr_bytes); }},
        {"duration_ms", integer, true, InAudit::Value, [](const RunOutcome& o) { return json(o.exec.duration.count()); }},
        {"cpu_ms", integer, true, InAudit::Value, [](const RunOutcome& o) { return json(o.exec.cpu.count()); }},
        {"peak_memory_bytes", integer, true, InAudit::Value, [](const RunOutcome& o) { return json(o.exec.peak_memory_bytes); }},
        {"decision",
         {{"type", "string"}, {"enum", {"allow", "ask", "deny", "approved", "denied", "refused"}}},
         true, InAudit::No, [](const RunOutcome& o) { return json(o.decision); }},
        {"risk", {{"type", "string"}, {"enum", {"low", "medium", "high", "critical"}}}, true, InAudit::No,
         [](const RunOutcome& o) { return json(threat_model::to_string(o.risk)); }},
        {"findings", {{"type", "array"}, {"items", finding}}, true, InAudit::No, [](const RunOutcome& o) { return o.findings; }},
        {"audit_id", {{"type", json::array({"string", "null"})}}, true, InAudit::No,
         [](const RunOutcome& o) { return o.audit_id.empty() ? json(nullptr) : json(o.audit_id); }},
        {"notes", {{"type", "array"}, {"items", str}}, false, InAudit::No, [](const RunOutcome& o) { return json(o.exec.notes); }},
        {"files",
         {{"type", "array"},
          {"items", {{"type", "object"},
                     {"properties", {{"path", str}, {"uri", str}, {"mimeType", str}, {"size", integer},
                                     {"change", {{"type", "string"}, {"enum", {"created", "changed"}}}}}},
                     {"required", {"path", "uri", "mimeType", "size", "change"}}}}},
         false, InAudit::Value, files_json},
        {"images", integer, false, InAudit::Value, [](const RunOutcome& o) { return json(o.images); }},
        {"interpreter", {{"type", json::array({"object", "null"})}}, false, InAudit::No,
         [](const RunOutcome& o) { return o.interpreter; }},
    };
    return table;
}

void print_stream(std::ostringstream& out, const char* name, const std::string& data, bool truncated, std::uint64_t bytes) {
    if (data.empty() && !truncated) return;
    out << "--- " << name << " ---\n" << data;
    if (!data.empty() && data.back() != '\n') out << "\n";
    if (truncated) out << "[" << name << " truncated: " << bytes << " bytes produced]\n";
}

}  // namespace

void RunOutcome::take_assessment(const security::Assessment& a) {
    risk = a.risk;
    findings = a.to_json().value("findings", json::array());
}

json outcome_schema() {
    json properties = json::object(), required = json::array();
    for (const auto& f : fields()) {
        properties[f.name] = f.schema;
        if (f.required) required.push_back(f.name);
    }
    return {{"type", "object"}, {"properties", properties}, {"required", required}};
}

json outcome_json(const RunOutcome& o) {
    json out = json::object();
    for (const auto& f : fields()) out[f.name] = f.get(o);
    return out;
}

json outcome_audit(const RunOutcome& o) {
    json out = json::object();
    for (const auto& f : fields()) {
        switch (f.audit) {
            case InAudit::No: break;
            case InAudit::Value: out[f.name] = f.get(o); break;
            case InAudit::Sha256: out[std::string(f.name) + "_sha256"] = sha256_hex(f.get(o).get<std::string>()); break;
        }
    }
    return out;
}

std::string format_finding(const security::Finding& f) {
    std::ostringstream out;
    out << f.rule << " (" << f.threat << (f.attack_signature ? ", attack signature" : "") << ") line " << f.line;
    if (f.column > 0) out << ":" << f.column;
    out << ": " << f.message;
    if (!f.hint.empty()) out << " — " << f.hint;
    return out.str();
}

std::string summarize(const sandbox::ExecResult& r, const security::Assessment& a, const std::string& language) {
    std::ostringstream out;
    if (r.cancelled) out << "cancelled";
    else if (r.timed_out) out << "timed out";
    else if (r.oom_killed) out << "killed: out of memory";
    else if (r.signal) out << "killed by signal " << *r.signal;
    else out << "exit " << r.exit_code.value_or(-1);
    out << " (" << language << ", " << r.duration.count() << " ms, peak memory " << format_size(r.peak_memory_bytes) << ")\n";
    print_stream(out, "stdout", r.stdout_data, r.stdout_truncated, r.stdout_bytes);
    print_stream(out, "stderr", r.stderr_data, r.stderr_truncated, r.stderr_bytes);
    for (const auto& f : a.findings) out << "finding " << format_finding(f) << "\n";
    for (const auto& n : r.notes) out << "note: " << n << "\n";
    return out.str();
}

}  // namespace kiln::tools
