#include "tools/run_tools.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <sstream>

#include "common/hash.hpp"
#include "common/text.hpp"
#include "common/units.hpp"
#include "security/run_limits.hpp"
#include "tools/workspace_fs.hpp"

namespace kiln::tools {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kRecentPerSession = 50;

bool executable_in(const std::string& rootfs, const std::string& path) {
    return ::access((rootfs + path).c_str(), X_OK) == 0;
}

std::string decision_name(security::Decision d) {
    switch (d) {
        case security::Decision::Allow: return "allow";
        case security::Decision::Ask: return "ask";
        case security::Decision::Deny: return "deny";
    }
    return "deny";
}

json findings_json(const security::Assessment& a) { return a.to_json().value("findings", json::array()); }

// The compact text an LLM reads first: status, output, then findings.
std::string summarize(const sandbox::ExecResult& r, const security::Assessment& a, const std::string& language) {
    std::ostringstream out;
    if (r.cancelled) out << "cancelled";
    else if (r.timed_out) out << "timed out";
    else if (r.oom_killed) out << "killed: out of memory";
    else if (r.signal) out << "killed by signal " << *r.signal;
    else out << "exit " << r.exit_code.value_or(-1);
    out << " (" << language << ", " << r.duration.count() << " ms, peak memory " << format_size(r.peak_memory_bytes) << ")\n";
    if (!r.stdout_data.empty() || r.stdout_truncated) {
        out << "--- stdout ---\n" << r.stdout_data;
        if (!r.stdout_data.empty() && r.stdout_data.back() != '\n') out << "\n";
        if (r.stdout_truncated) out << "[stdout truncated: " << r.stdout_bytes << " bytes produced]\n";
    }
    if (!r.stderr_data.empty() || r.stderr_truncated) {
        out << "--- stderr ---\n" << r.stderr_data;
        if (!r.stderr_data.empty() && r.stderr_data.back() != '\n') out << "\n";
        if (r.stderr_truncated) out << "[stderr truncated: " << r.stderr_bytes << " bytes produced]\n";
    }
    for (const auto& f : a.findings)
        out << "finding " << f.rule << " (" << f.threat << (f.attack_signature ? ", attack signature" : "") << ") line "
            << f.line << ": " << f.message << " — " << f.hint << "\n";
    for (const auto& n : r.notes) out << "note: " << n << "\n";
    return out.str();
}

json run_output_schema() {
    json nullable_int = {{"type", json::array({"integer", "null"})}};
    json str = {{"type", "string"}};
    json boolean = {{"type", "boolean"}};
    json integer = {{"type", "integer"}};
    json finding = {{"type", "object"},
                    {"properties",
                     {{"rule", str}, {"threat", str}, {"controls", {{"type", "array"}, {"items", str}}},
                      {"severity", str}, {"line", integer}, {"column", integer}, {"message", str}, {"hint", str},
                      {"attack_signature", boolean}}},
                    {"required", {"rule", "threat", "severity", "line", "message", "attack_signature"}}};
    return {{"type", "object"},
            {"properties",
             {{"exit_code", nullable_int}, {"signal", nullable_int}, {"timed_out", boolean}, {"oom_killed", boolean},
              {"cancelled", boolean}, {"stdout", str}, {"stderr", str}, {"stdout_truncated", boolean},
              {"stderr_truncated", boolean}, {"duration_ms", integer}, {"cpu_ms", integer}, {"peak_memory_bytes", integer},
              {"decision", {{"type", "string"}, {"enum", {"allow", "ask", "deny", "approved", "denied"}}}},
              {"risk", {{"type", "string"}, {"enum", {"low", "medium", "high", "critical"}}}},
              {"findings", {{"type", "array"}, {"items", finding}}},
              {"audit_id", {{"type", json::array({"string", "null"})}}},
              {"notes", {{"type", "array"}, {"items", str}}}}},
            {"required", {"exit_code", "signal", "timed_out", "oom_killed", "stdout", "stderr", "stdout_truncated",
                          "stderr_truncated", "duration_ms", "cpu_ms", "peak_memory_bytes", "decision", "risk", "findings",
                          "audit_id"}}};
}

json empty_run(const std::string& decision, const security::Assessment& a, const std::string& audit_id) {
    return {{"exit_code", nullptr}, {"signal", nullptr}, {"timed_out", false}, {"oom_killed", false}, {"cancelled", false},
            {"stdout", ""}, {"stderr", ""}, {"stdout_truncated", false}, {"stderr_truncated", false},
            {"duration_ms", 0}, {"cpu_ms", 0}, {"peak_memory_bytes", 0}, {"decision", decision},
            {"risk", threat_model::to_string(a.risk)}, {"findings", findings_json(a)},
            {"audit_id", audit_id.empty() ? json(nullptr) : json(audit_id)}, {"notes", json::array()}};
}

}  // namespace

std::vector<Interpreter> available_interpreters(const std::string& rootfs) {
    std::vector<Interpreter> out;
    struct Candidate { const char* lang; std::vector<const char*> paths; const char* ext; security::Language v; };
    const Candidate candidates[] = {
        {"python", {"/usr/bin/python3"}, "py", security::Language::Python},
        {"bash", {"/usr/bin/bash", "/bin/bash"}, "sh", security::Language::Shell},
        {"sh", {"/usr/bin/sh", "/bin/sh"}, "sh", security::Language::Shell},
        {"javascript", {"/usr/bin/node", "/usr/bin/nodejs", "/usr/local/bin/node"}, "js", security::Language::JavaScript},
    };
    for (const auto& c : candidates)
        for (const char* p : c.paths)
            if (executable_in(rootfs, p)) {
                out.push_back({c.lang, p, c.ext, c.v});
                break;
            }
    return out;
}

struct RunService::Slot {
    RunService* owner;
    std::string session;
    ~Slot() {
        std::lock_guard lock(owner->mutex_);
        --owner->runs_total_;
        if (--owner->runs_by_session_[session] == 0) owner->runs_by_session_.erase(session);
    }
};

RunService::RunService(const Config& config, security::Policy policy, sandbox::Runtime& runtime, audit::AuditLog* audit,
                       WorkspaceManager& workspaces, TrustStore& trust)
    : config_(config),
      policy_(std::move(policy)),
      runtime_(runtime),
      audit_(audit),
      workspaces_(workspaces),
      trust_(trust),
      interpreters_(available_interpreters(config.sandbox.rootfs)) {}

std::set<std::string> RunService::controls_in_force() const {
    std::set<std::string> in_force = runtime_.capabilities().in_force();
    if (config_.policy.validation == ValidationMode::Enforce) in_force.insert("C004");
    if (policy_.command_allowlist_enabled) in_force.insert("C005");
    if (audit_ && audit_->healthy()) in_force.insert("C011");
    // C013: workspaces are RAM-backed tmpfs wiped at session end (root only).
    if (::geteuid() == 0) in_force.insert("C013");
    return in_force;
}

Result<std::unique_ptr<RunService::Slot>> RunService::take_slot(const std::string& session_id) {
    std::lock_guard lock(mutex_);
    if (runs_total_ >= config_.workspace.max_runs_total)
        return make_error("run", std::to_string(runs_total_) + " runs are already in progress on this server (limit " +
                                     std::to_string(config_.workspace.max_runs_total) +
                                     ", workspace.max_runs_total); retry when one finishes");
    if (runs_by_session_[session_id] >= config_.workspace.max_runs_per_session)
        return make_error("run", std::to_string(runs_by_session_[session_id]) + " runs of this session are in progress (limit " +
                                     std::to_string(config_.workspace.max_runs_per_session) +
                                     ", workspace.max_runs_per_session); wait for one to finish");
    ++runs_total_;
    ++runs_by_session_[session_id];
    // Built in place: a temporary Slot would run its destructor (and give
    // the slot back) right here, under the lock.
    return std::unique_ptr<Slot>(new Slot{this, session_id});
}

std::optional<std::string> RunService::check_bounds(const Request& r) const {
    if (r.code.size() > policy_.max_code_bytes)
        return "'code' is " + format_size(r.code.size()) + "; the policy allows at most " + format_size(policy_.max_code_bytes);
    if (!is_valid_utf8(r.code)) return "'code' is not valid UTF-8 text; send source code, or binary data with write_file (encoding base64)";
    auto max_timeout_s = policy_.max_timeout.count() / 1000;
    if (r.timeout_seconds && (*r.timeout_seconds < 1 || *r.timeout_seconds > max_timeout_s))
        return "'timeout_seconds' must be from 1 to " + std::to_string(max_timeout_s) + " (policy " + policy_.name + ")";
    auto max_mb = static_cast<std::int64_t>(policy_.max_memory_bytes >> 20);
    if (r.memory_mb && (*r.memory_mb < 16 || *r.memory_mb > max_mb))
        return "'memory_mb' must be from 16 to " + std::to_string(max_mb) + " (policy " + policy_.name + ")";
    return std::nullopt;
}

std::string RunService::record(const std::string& event, json fields, const CallContext& ctx) {
    const SessionInfo* s = ctx.session;
    fields["session_id"] = s ? s->id : "";
    if (s) fields["client"] = {{"name", s->client_name}, {"version", s->client_version}};
    {
        std::lock_guard lock(mutex_);
        auto& ring = recent_[s ? s->id : ""];
        json copy = fields;
        copy["event"] = event;
        copy.erase("code");
        ring.push_back(copy);
        if (ring.size() > kRecentPerSession) ring.pop_front();
    }
    if (!audit_) return {};
    auto ref = audit_->append(event, std::move(fields));
    if (!ref) {
        spdlog::error("audit: {}", ref.error().what());
        return {};
    }
    return ref->id;
}

json RunService::recent_audit(const std::string& session_id) const {
    std::lock_guard lock(mutex_);
    auto it = recent_.find(session_id);
    json out = json::array();
    if (it != recent_.end())
        for (const auto& r : it->second) out.push_back(r);
    return out;
}

security::Decision RunService::resolve_ask(const security::Assessment& a, const std::string& fingerprint,
                                           const CallContext& ctx, std::string& how) {
    auto trusted = trust_.consume(fingerprint);
    if (trusted && *trusted) {
        how = "approved: code hash " + fingerprint.substr(0, 16) + "... is in the trust store";
        return security::Decision::Allow;
    }
    if (!ctx.session || !ctx.session->client_can_elicit || !ctx.request_fn) {
        how = "approval needed but the client cannot be asked (no elicitation capability); policy fallback: " +
              decision_name(policy_.ask_fallback) + ". To approve this exact code: kiln trust add --sha256 " + fingerprint;
        return policy_.ask_fallback;
    }
    std::ostringstream msg;
    msg << "Kiln needs your approval to run this code (risk " << threat_model::to_string(a.risk) << ").\n";
    for (const auto& f : a.findings) msg << "- " << f.threat << " " << f.rule << " line " << f.line << ": " << f.message << "\n";
    json params = {
        {"message", msg.str()},
        {"requestedSchema",
         {{"type", "object"},
          {"properties",
           {{"choice", {{"type", "string"}, {"title", "Decision"},
                        {"enum", {"approve_once", "approve_and_remember", "deny"}},
                        {"enumNames", {"Approve once", "Approve and remember this code", "Deny"}}}}}},
          {"required", {"choice"}}}}};
    auto answer = ctx.request_fn("elicitation/create", params);
    if (!answer) {
        how = "approval request failed (" + answer.error().what() + "); policy fallback: " + decision_name(policy_.ask_fallback);
        return policy_.ask_fallback;
    }
    std::string action = answer->value("action", "");
    std::string choice = answer->contains("content") && (*answer)["content"].is_object()
                             ? (*answer)["content"].value("choice", "") : "";
    if (action == "accept" && (choice == "approve_once" || choice == "approve_and_remember")) {
        if (choice == "approve_and_remember") {
            if (Status st = trust_.add({fingerprint, "approved by the user through " + ctx.session->client_name, 0, {}, {}}); !st)
                spdlog::warn("could not remember approval: {}", st.error().what());
        }
        how = "approved by the user (" + choice + ")";
        return security::Decision::Allow;
    }
    how = "denied by the user (" + (action.empty() ? std::string("no answer") : action + (choice.empty() ? "" : "/" + choice)) + ")";
    return security::Decision::Deny;
}

ToolResult RunService::assess_only(const std::string& language, const std::string& code, const CallContext&) {
    auto lang = security::parse_language(language);
    if (!lang) return ToolResult::error("assess_code: 'language' " + lang.error().message);
    security::Assessment a = security::assess(*lang, code, controls_in_force(), policy_);
    json sc = a.to_json();
    std::ostringstream text;
    text << "decision " << sc["decision"].get<std::string>() << ", risk " << sc["risk"].get<std::string>() << "\n";
    for (const auto& f : a.findings)
        text << f.rule << " (" << f.threat << ") line " << f.line << ":" << f.column << ": " << f.message << " — " << f.hint << "\n";
    for (const auto& r : a.reasons) text << "reason: " << r << "\n";
    return {text.str(), sc, false, {}};
}

ToolResult RunService::run(const Request& req, const CallContext& ctx) {
    const std::string session_id = ctx.session ? ctx.session->id : "default";
    const Interpreter* interp = nullptr;
    for (const auto& i : interpreters_)
        if (i.language == req.language) interp = &i;
    if (!interp) {
        std::string names;
        for (const auto& i : interpreters_) names += (names.empty() ? "" : ", ") + i.language;
        return ToolResult::error(req.tool + ": 'language' must be one of " + names + " on this host (got \"" + req.language + "\")");
    }
    if (auto bad = check_bounds(req)) return ToolResult::error(req.tool + ": " + *bad);
    if (audit_ && !audit_->healthy() && config_.audit.on_failure == AuditOnFailure::FailClosed)
        return ToolResult::error(req.tool + ": refused: the audit log cannot be written (" + audit_->last_error() +
                                 "), and audit.on_failure is fail_closed. Fix the log's disk or permissions; the server keeps answering.");
    auto slot = take_slot(session_id);
    if (!slot) return ToolResult::error(req.tool + ": " + slot.error().message);

    const std::string fingerprint = code_fingerprint(req.code);
    // Every later record of this call carries call_id, so a reviewer can
    // gather the call, its decision and its execution (kiln audit show --id).
    const std::string call_id = record("tool_call", {{"tool", req.tool}, {"language", req.language}, {"code_sha256", sha256_hex(req.code)},
                         {"code_fingerprint", fingerprint}, {"code", req.code}}, ctx);

    // 1. Validate.
    auto t0 = Clock::now();
    std::set<std::string> in_force = controls_in_force();
    security::Assessment a;
    if (config_.policy.validation != ValidationMode::Off) {
        a = security::assess(interp->validator_language, req.code, in_force, policy_);
    } else {
        a.decision = security::Decision::Allow;
        a.risk = threat_model::Level::Low;
        a.reasons.push_back("validation is off (policy.validation=off)");
    }
    auto validate_us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();

    // 2. Decide.
    security::Decision decision = a.decision;
    std::string how = "policy " + policy_.name;
    std::string decision_label = decision_name(decision);
    if (config_.policy.validation == ValidationMode::Warn && decision != security::Decision::Allow) {
        how = "policy.validation=warn: would have been " + decision_label + ", running anyway";
        decision = security::Decision::Allow;
    } else if (decision == security::Decision::Ask) {
        decision = resolve_ask(a, fingerprint, ctx, how);
        decision_label = decision == security::Decision::Allow ? "approved" : "denied";
    }
    json in_force_json = json(std::vector<std::string>(in_force.begin(), in_force.end()));
    json assessment = a.to_json();
    std::string decision_id = record("decision", {{"tool", req.tool}, {"call_id", call_id}, {"decision", decision_label}, {"how", how},
                                                  {"risk", assessment["risk"]}, {"findings", assessment["findings"]},
                                                  {"threats", assessment["threats"]}, {"reasons", assessment["reasons"]},
                                                  {"controls_in_force", in_force_json}, {"code_sha256", sha256_hex(req.code)},
                                                  {"timings", {{"validate_us", validate_us}}}}, ctx);
    if (decision != security::Decision::Allow) {
        std::ostringstream text;
        text << "denied (risk " << assessment["risk"].get<std::string>() << "): " << how << "\n";
        for (const auto& f : a.findings)
            text << f.rule << " (" << f.threat << ") line " << f.line << ": " << f.message << " — " << f.hint << "\n";
        for (const auto& r : a.reasons) text << "reason: " << r << "\n";
        return ToolResult::error(text.str(), empty_run(decision_label == "ask" ? "deny" : decision_label, a, decision_id));
    }

    // 3. Prepare the workspace and the code file.
    auto ws = workspaces_.acquire(session_id);
    if (!ws) return ToolResult::error(req.tool + ": " + ws.error().what(), empty_run(decision_label, a, decision_id));
    wsfs::Owner owner{(*ws)->owner_uid(), (*ws)->owner_gid()};
    for (const auto& [path, content] : req.files) {
        auto rel = wsfs::normalize_relative(path);
        if (!rel) return ToolResult::error(req.tool + ": files: " + rel.error().what(), empty_run(decision_label, a, decision_id));
        if (Status st = wsfs::write_file((*ws)->dir_fd(), *rel, content, owner); !st)
            return ToolResult::error(req.tool + ": files: " + st.error().what(), empty_run(decision_label, a, decision_id));
    }

    sandbox::SandboxSpec spec;
    spec.workspace_dir = (*ws)->path();
    spec.network_fd = (*ws)->network_fd();
    spec.group = (*ws)->group_name();
    spec.host_uid = (*ws)->owner_uid();
    spec.host_gid = (*ws)->owner_gid();
    spec.stdin_data = req.stdin_data;
    security::apply_run_limits(spec, policy_, config_.sandbox);
    if (req.memory_mb) spec.limits.memory_bytes = static_cast<std::uint64_t>(*req.memory_mb) << 20;
    if (req.timeout_seconds) spec.limits.timeout = std::chrono::milliseconds(*req.timeout_seconds * 1000);

    // The code reaches the interpreter as a file, never through a shell
    // string: /kiln/main.<ext>, made in the jail's own read-only root, so
    // nothing is written on the host for it.
    if (req.tool == "run_command") {
        spec.argv = {"/bin/sh", "-c", req.code};
    } else {
        std::string path = "/kiln/main." + interp->extension;
        spec.files.push_back({path, req.code});
        spec.argv = {interp->path, path};
    }

    // 4. Run.
    sandbox::RunHooks hooks;
    hooks.stop = ctx.stop;
    hooks.on_progress = [&ctx](const sandbox::Progress& p) {
        ctx.progress(static_cast<double>(p.elapsed.count()), std::nullopt,
                     std::to_string(p.elapsed.count()) + " ms elapsed, " + std::to_string(p.stdout_bytes + p.stderr_bytes) +
                         " bytes of output");
    };
    auto result = runtime_.run(spec, hooks);
    (*ws)->touch();
    if (!result) {
        record("error", {{"tool", req.tool}, {"call_id", call_id}, {"step", result.error().step}, {"errno", result.error().err},
                         {"message", result.error().what()}}, ctx);
        return ToolResult::error(req.tool + ": the sandbox could not start: " + result.error().what(),
                                 empty_run(decision_label, a, decision_id));
    }
    const sandbox::ExecResult& r = *result;

    // 5. Record and answer.
    json result_json = {{"exit_code", r.exit_code ? json(*r.exit_code) : json(nullptr)},
                        {"signal", r.signal ? json(*r.signal) : json(nullptr)},
                        {"timed_out", r.timed_out}, {"oom_killed", r.oom_killed}, {"cancelled", r.cancelled},
                        {"duration_ms", r.duration.count()}, {"cpu_ms", r.cpu.count()},
                        {"peak_memory_bytes", r.peak_memory_bytes},
                        {"stdout_bytes", r.stdout_bytes}, {"stderr_bytes", r.stderr_bytes},
                        {"stdout_sha256", sha256_hex(r.stdout_data)}, {"stderr_sha256", sha256_hex(r.stderr_data)}};
    std::string exec_id = record(
        "execution",
        {{"tool", req.tool}, {"call_id", call_id}, {"language", req.language}, {"code_sha256", sha256_hex(req.code)},
         {"decision", decision_label}, {"result", result_json},
         {"sandbox", {{"runtime", std::string(runtime_.name())},
                      {"limits", {{"memory_bytes", spec.limits.memory_bytes}, {"cpus", spec.limits.cpus},
                                  {"pids", spec.limits.pids}, {"timeout_ms", spec.limits.timeout.count()},
                                  {"tmp_size_bytes", spec.limits.tmp_size_bytes}}}}},
         {"timings", {{"setup_us", r.timings.setup.count()},
                      {"run_us", r.timings.run.count()}, {"teardown_us", r.timings.teardown.count()}}}},
        ctx);

    json sc = empty_run(decision_label, a, exec_id.empty() ? decision_id : exec_id);
    sc["exit_code"] = result_json["exit_code"];
    sc["signal"] = result_json["signal"];
    sc["timed_out"] = r.timed_out;
    sc["oom_killed"] = r.oom_killed;
    sc["cancelled"] = r.cancelled;
    sc["stdout"] = r.stdout_data;
    sc["stderr"] = r.stderr_data;
    sc["stdout_truncated"] = r.stdout_truncated;
    sc["stderr_truncated"] = r.stderr_truncated;
    sc["duration_ms"] = r.duration.count();
    sc["cpu_ms"] = r.cpu.count();
    sc["peak_memory_bytes"] = r.peak_memory_bytes;
    sc["notes"] = r.notes;
    bool failed = r.timed_out || r.oom_killed || r.cancelled || r.signal.has_value() || r.exit_code.value_or(1) != 0;
    return {summarize(r, a, req.language), sc, failed, {}};
}

namespace {

json code_input_schema(const std::vector<Interpreter>& interps, const Config&) {
    json langs = json::array();
    for (const auto& i : interps) langs.push_back(i.language);
    return {{"type", "object"},
            {"properties",
             {{"language", {{"type", "string"}, {"enum", langs}, {"description", "interpreter to run the code with"}}},
              {"code", {{"type", "string"}, {"description", "the program text; it runs from /kiln/main.<ext>, cwd /workspace"}}},
              {"stdin", {{"type", "string"}, {"description", "bytes fed to the program's stdin"}}},
              {"timeout_seconds", {{"type", "integer"}, {"minimum", 1}, {"description", "wall-clock limit; the policy sets the maximum"}}},
              {"memory_mb", {{"type", "integer"}, {"minimum", 16}, {"description", "memory limit; the policy sets the maximum"}}},
              {"files", {{"type", "array"}, {"maxItems", 100},
                         {"items", {{"type", "object"},
                                    {"properties", {{"path", {{"type", "string"}, {"minLength", 1}}}, {"content", {{"type", "string"}}}}},
                                    {"required", {"path", "content"}}, {"additionalProperties", false}}},
                         {"description", "files written into /workspace before the run"}}}}},
            {"required", {"language", "code"}},
            {"additionalProperties", false}};
}

class RunCode final : public Tool {
public:
    explicit RunCode(RunService& s) : s_(s) {
        def_ = {"run_code", "Run code in the sandbox",
                "Runs a program in an isolated sandbox (no network, read-only system, limited memory, CPU and time). "
                "The session's files are at /workspace, which is the working directory and persists between calls. "
                "The code is checked by Kiln's security validator first; risky code may be denied or need approval.",
                code_input_schema(s.interpreters(), {}), run_output_schema(), {false, true, false, false}};
    }
    const ToolDef& def() const override { return def_; }
    ToolResult call(const json& args, const CallContext& ctx) override {
        RunService::Request r;
        r.tool = "run_code";
        r.language = args["language"];
        r.code = args["code"];
        r.stdin_data = args.value("stdin", "");
        if (args.contains("timeout_seconds")) r.timeout_seconds = args["timeout_seconds"].get<std::int64_t>();
        if (args.contains("memory_mb")) r.memory_mb = args["memory_mb"].get<std::int64_t>();
        for (const auto& f : args.value("files", json::array())) r.files.emplace_back(f["path"], f["content"]);
        return s_.run(r, ctx);
    }

private:
    RunService& s_;
    ToolDef def_;
};

class RunCommand final : public Tool {
public:
    explicit RunCommand(RunService& s) : s_(s) {
        def_ = {"run_command", "Run a shell command in the sandbox",
                "Runs `command` with /bin/sh -c inside the sandbox, in /workspace. Validated as shell first.",
                {{"type", "object"},
                 {"properties",
                  {{"command", {{"type", "string"}, {"minLength", 1}}},
                   {"stdin", {{"type", "string"}}},
                   {"timeout_seconds", {{"type", "integer"}, {"minimum", 1}}},
                   {"memory_mb", {{"type", "integer"}, {"minimum", 16}}}}},
                 {"required", {"command"}},
                 {"additionalProperties", false}},
                run_output_schema(), {false, true, false, false}};
    }
    const ToolDef& def() const override { return def_; }
    ToolResult call(const json& args, const CallContext& ctx) override {
        RunService::Request r;
        r.tool = "run_command";
        r.language = "sh";
        r.code = args["command"];
        r.stdin_data = args.value("stdin", "");
        if (args.contains("timeout_seconds")) r.timeout_seconds = args["timeout_seconds"].get<std::int64_t>();
        if (args.contains("memory_mb")) r.memory_mb = args["memory_mb"].get<std::int64_t>();
        return s_.run(r, ctx);
    }

private:
    RunService& s_;
    ToolDef def_;
};

class AssessCode final : public Tool {
public:
    explicit AssessCode(RunService& s) : s_(s) {
        json str = {{"type", "string"}};
        def_ = {"assess_code", "Assess code without running it",
                "Runs Kiln's security validator on the code and returns its findings, per-threat scores and the "
                "decision the policy would take. Nothing is executed.",
                {{"type", "object"},
                 {"properties", {{"language", {{"type", "string"}, {"enum", {"python", "bash", "sh", "javascript"}}}}, {"code", str}}},
                 {"required", {"language", "code"}},
                 {"additionalProperties", false}},
                {{"type", "object"},
                 {"properties", {{"decision", {{"type", "string"}, {"enum", {"allow", "ask", "deny"}}}},
                                 {"risk", {{"type", "string"}, {"enum", {"low", "medium", "high", "critical"}}}},
                                 {"findings", {{"type", "array"}}}, {"threats", {{"type", "array"}}},
                                 {"reasons", {{"type", "array"}, {"items", str}}}}},
                 {"required", {"decision", "risk", "findings", "threats", "reasons"}}},
                {true, false, true, false}};
    }
    const ToolDef& def() const override { return def_; }
    ToolResult call(const json& args, const CallContext& ctx) override {
        return s_.assess_only(args["language"], args["code"], ctx);
    }

private:
    RunService& s_;
    ToolDef def_;
};

}  // namespace

void register_run_tools(Registry& registry, RunService& service) {
    registry.add(std::make_unique<RunCode>(service));
    registry.add(std::make_unique<RunCommand>(service));
    registry.add(std::make_unique<AssessCode>(service));
}

}  // namespace kiln::tools
