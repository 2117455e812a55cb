#include "tools/run_tools.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <sstream>

#include "common/hash.hpp"
#include "common/kiln_metrics.hpp"
#include "common/text.hpp"
#include "common/units.hpp"
#include "tools/run_outcome.hpp"
#include "security/run_limits.hpp"
#include "threat_model/catalogue.hpp"
#include "tools/workspace_fs.hpp"

namespace kiln::tools {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kRecentPerSession = 50;

bool executable_in(const std::string& rootfs, const std::string& path) {
    return ::access((rootfs + path).c_str(), X_OK) == 0;
}

// The verdict as the decisions metric names it: under warn a verdict that
// ran (Allow) with the label of what would have happened is "warned".
metrics::DecisionLevel decision_level(const security::Verdict& v) {
    if (v.label == "approved") return metrics::DecisionLevel::Approved;
    if (v.label == "denied") return metrics::DecisionLevel::Denied;
    if (v.decision == security::Decision::Deny) return metrics::DecisionLevel::Deny;
    return v.label == "allow" ? metrics::DecisionLevel::Allow : metrics::DecisionLevel::Warned;
}

// In the order summarize() reports them: a cancelled run may also have
// hit its timeout on the way down.
metrics::ExecutionOutcome execution_outcome(const sandbox::ExecResult& r) {
    if (r.cancelled) return metrics::ExecutionOutcome::Cancelled;
    if (r.timed_out) return metrics::ExecutionOutcome::Timeout;
    if (r.oom_killed) return metrics::ExecutionOutcome::Oom;
    if (r.signal || r.exit_code.value_or(1) != 0) return metrics::ExecutionOutcome::Failed;
    return metrics::ExecutionOutcome::Ok;
}

double seconds(std::chrono::microseconds d) { return static_cast<double>(d.count()) / 1e6; }

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

// Microseconds per phase of one call, in order: mold's per-pass timer.
class PhaseTimes {
public:
    class Scope {
    public:
        Scope(PhaseTimes& times, const char* name) : times_(times), name_(name), start_(Clock::now()) {}
        ~Scope() { times_.add(name_, std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_)); }
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

    private:
        PhaseTimes& times_;
        const char* name_;
        Clock::time_point start_;
    };
    Scope time(const char* name) { return Scope(*this, name); }
    void add(const std::string& name, std::chrono::microseconds d) { us_[name + "_us"] += d.count(); }
    json to_json() const { return json(us_); }

private:
    std::map<std::string, std::int64_t> us_;
};

// One call on its way through the phases: what each found, for the next
// ones and for the records.
struct RunService::Call {
    Call(const Request& r, const CallContext& c) : req(r), ctx(c), session_id(c.session ? c.session->id : "default") {}
    const Request& req;
    const CallContext& ctx;
    const std::string session_id;
    const Interpreter* interp = nullptr;
    std::string call_id;      // the tool_call record's id: the call's audit_id
    std::string fingerprint;  // of the normalized code, for the trust store
    std::set<std::string> in_force;
    security::Assessment assessment;
    security::Verdict verdict;
    std::unique_ptr<Slot> slot;
    std::optional<WorkspaceUse> use;  // held until the call ends (a shared workspace's lock)
    Workspace* ws = nullptr;
    sandbox::SandboxSpec spec;
    RunOutcome outcome;
    // How the call ended, for kiln_executions_total; each phase that ends
    // it says which.
    metrics::ExecutionOutcome ending = metrics::ExecutionOutcome::Error;
    PhaseTimes times;
    // Progress values are milliseconds since the call began: they only grow
    // (MCP requires it), from waiting for a slot through the run.
    const Clock::time_point start = Clock::now();
    double elapsed_ms() const {
        return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
    }
};

struct RunService::Slot {
    RunService* owner;
    std::string session;
    metrics::GaugeHold active{metrics::runs_active()};
    ~Slot() {
        {
            std::lock_guard lock(owner->mutex_);
            --owner->runs_total_;
            if (--owner->runs_by_session_[session] == 0) owner->runs_by_session_.erase(session);
        }
        owner->slot_freed_.notify_all();
    }
};

RunService::RunService(const Config& config, security::Policy policy, sandbox::Runtime& runtime, audit::AuditLog* audit,
                       WorkspaceStore& workspaces, security::TrustStore& trust)
    : config_(config),
      policy_(std::move(policy)),
      runtime_(runtime),
      audit_(audit),
      workspaces_(workspaces),
      trust_(trust),
      interpreters_(available_interpreters(config.sandbox.rootfs)) {
    std::vector<std::string> threats;
    for (const auto& t : threat_model::catalogue().threats) threats.push_back(t.id);
    metrics::declare_threats(threats);
}

std::set<std::string> RunService::controls_in_force() const {
    std::set<std::string> in_force = runtime_.capabilities().in_force();
    if (config_.policy.validation == ValidationMode::Enforce) in_force.insert("C004");
    if (policy_.command_allowlist_enabled) in_force.insert("C005");
    if (audit_ && audit_->healthy()) in_force.insert("C011");
    // C013 (encrypted storage) is never in force: Kiln encrypts nothing at
    // rest; RAM-only workspaces on a host without swap make it degraded at
    // best (security/selftest.cpp, judge_c013).
    return in_force;
}

const Interpreter* RunService::find_interpreter(const std::string& language) const {
    for (const auto& i : interpreters_)
        if (i.language == language) return &i;
    return nullptr;
}

// A slot is free when neither the server's nor the session's limit is
// reached. Past them a call waits, in a queue of at most
// workspace.queue_length calls, for at most workspace.queue_wait, saying so
// through progress once a second; a cancelled call stops waiting at once.
Result<std::unique_ptr<RunService::Slot>> RunService::take_slot(Call& call) {
    const auto& w = config_.workspace;
    std::unique_lock lock(mutex_);
    auto in_session = [&] { return runs_by_session_[call.session_id]; };
    auto free = [&] { return runs_total_ < w.max_runs_total && in_session() < w.max_runs_per_session; };
    auto busy = [&] {
        return std::to_string(in_session()) + " runs of this session (limit " + std::to_string(w.max_runs_per_session) +
               ", workspace.max_runs_per_session) and " + std::to_string(runs_total_) + " on the server (limit " +
               std::to_string(w.max_runs_total) + ", workspace.max_runs_total) are in progress";
    };
    if (!free()) {
        if (waiting_ >= w.queue_length)
            return make_error("run", busy() + ", and " + std::to_string(waiting_) +
                                         " calls already wait for a slot (workspace.queue_length); retry when one finishes");
        ++waiting_;
        {
            metrics::GaugeHold queued(metrics::runs_waiting());
            const auto start = Clock::now(), deadline = start + w.queue_wait;
            while (!free()) {
                auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
                if (call.ctx.stop.stop_requested() || Clock::now() >= deadline) break;
                lock.unlock();
                call.ctx.progress(call.elapsed_ms(), std::nullopt,
                                  "waiting for a run slot (" + std::to_string(waited.count() / 1000) + " s)");
                lock.lock();
                slot_freed_.wait_until(lock, call.ctx.stop, std::min(deadline, Clock::now() + std::chrono::seconds(1)), free);
            }
        }
        --waiting_;
        if (!free()) {
            if (call.ctx.stop.stop_requested()) return make_error("run", "cancelled while waiting for a run slot");
            return make_error("run", busy() + ", and none was freed within " +
                                         std::to_string(w.queue_wait.count() / 1000) + " s (workspace.queue_wait); retry later");
        }
    }
    ++runs_total_;
    ++runs_by_session_[call.session_id];
    // Built in place: a temporary Slot would run its destructor (and give
    // the slot back) right here, under the lock.
    return std::unique_ptr<Slot>(new Slot{this, call.session_id});
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

// Every record of a call carries its call_id (the tool_call record's id),
// so a reviewer gathers the call with `kiln audit show --id`.
std::string RunService::record(const std::string& event, json fields, Call& call) {
    auto timer = call.times.time("audit");
    const SessionInfo* s = call.ctx.session;
    if (!call.call_id.empty()) fields["call_id"] = call.call_id;
    fields["tool"] = call.req.tool;
    fields["session_id"] = s ? s->id : "";
    if (s) fields["principal"] = s->principal;
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

void RunService::forget_session(const std::string& session_id) {
    std::lock_guard lock(mutex_);
    recent_.erase(session_id);
}

ToolResult RunService::refuse(Call& call, const std::string& reason) {
    record("refused", {{"reason", reason}}, call);
    metrics::decisions(metrics::DecisionLevel::Refused).inc();
    call.ending = call.ctx.stop.stop_requested() ? metrics::ExecutionOutcome::Cancelled : metrics::ExecutionOutcome::Refused;
    call.outcome.decision = "refused";
    call.outcome.audit_id = call.call_id;
    return ToolResult::error(call.req.tool + ": " + reason, outcome_json(call.outcome));
}

ToolResult RunService::fail(Call& call, const std::string& step, const Error& e) {
    record("error", {{"step", e.step}, {"errno", e.err}, {"message", e.what()}}, call);
    call.ending = metrics::ExecutionOutcome::Error;
    call.outcome.audit_id = call.call_id;
    return ToolResult::error(call.req.tool + ": " + step + ": " + e.what(), outcome_json(call.outcome));
}

// Approval through elicitation, when this client can be asked.
security::AskFn RunService::asker(const CallContext& ctx) const {
    if (!ctx.session || !ctx.session->client_can_elicit || !ctx.request_fn) return {};
    return [&ctx](const security::Assessment& a) -> Result<security::Answer> {
        std::ostringstream msg;
        msg << "Kiln needs your approval to run this code (risk " << threat_model::to_string(a.risk) << ").\n";
        for (const auto& f : a.findings) msg << "- " << format_finding(f) << "\n";
        json params = {
            {"message", msg.str()},
            {"requestedSchema",
             {{"type", "object"},
              {"properties",
               {{"choice", {{"type", "string"}, {"title", "Decision"},
                            {"enum", {"approve_once", "approve_and_remember", "deny"}},
                            {"enumNames", {"Approve once", "Approve and remember this code", "Deny"}}}}}},
              {"required", {"choice"}}}}};
        auto reply = ctx.request_fn("elicitation/create", params);
        if (!reply) return reply.error();
        std::string action = reply->value("action", "");
        std::string choice = reply->contains("content") && (*reply)["content"].is_object()
                                 ? (*reply)["content"].value("choice", "") : "";
        security::Answer answer;
        answer.who = ctx.session->client_name;
        answer.said = action.empty() ? std::string("no answer") : action + (choice.empty() ? "" : "/" + choice);
        if (action == "accept" && choice == "approve_once") answer.choice = security::Answer::Choice::ApproveOnce;
        else if (action == "accept" && choice == "approve_and_remember") answer.choice = security::Answer::Choice::ApproveAndRemember;
        if (action == "accept" && answer.choice != security::Answer::Choice::Deny) answer.said = choice;
        return answer;
    };
}

ToolResult RunService::assess_only(const std::string& language, const std::string& code, const CallContext&) {
    auto lang = security::parse_language(language);
    if (!lang) return ToolResult::error("assess_code: 'language' " + lang.error().message);
    security::Assessment a = security::assess(*lang, code, controls_in_force(), policy_);
    json sc = a.to_json();
    std::ostringstream text;
    text << "decision " << sc["decision"].get<std::string>() << ", risk " << sc["risk"].get<std::string>() << "\n";
    for (const auto& f : a.findings) text << format_finding(f) << "\n";
    for (const auto& r : a.reasons) text << "reason: " << r << "\n";
    return {text.str(), sc, false, {}};
}

ToolResult RunService::run(const Request& req, const CallContext& ctx) {
    Call call(req, ctx);
    call.times.add("parse", req.parse_time);
    ToolResult result = run_phases(call);
    metrics::executions(call.ending).inc();
    return result;
}

ToolResult RunService::run_phases(Call& call) {
    if (auto answer = admit(call)) return *answer;
    validate(call);
    if (auto answer = decide(call)) return *answer;
    if (auto answer = prepare(call)) return *answer;
    if (auto answer = execute(call)) return *answer;
    return record_outcome(call);
}

// The call is recorded before anything can refuse it, so every call an
// agent made is in the log, refused or not.
std::optional<ToolResult> RunService::admit(Call& call) {
    auto timer = call.times.time("admit");
    const Request& req = call.req;
    call.fingerprint = security::code_fingerprint(req.code);
    call.call_id = record("tool_call", {{"language", req.language}, {"code_sha256", sha256_hex(req.code)},
                                        {"code_fingerprint", call.fingerprint}, {"code", req.code}}, call);
    call.outcome.audit_id = call.call_id;
    call.interp = find_interpreter(req.language);
    if (!call.interp) {
        std::string names;
        for (const auto& i : interpreters_) names += (names.empty() ? "" : ", ") + i.language;
        return refuse(call, "'language' must be one of " + names + " on this host (got \"" + req.language + "\")");
    }
    if (auto bad = check_bounds(req)) return refuse(call, *bad);
    if (audit_ && !audit_->healthy() && config_.audit.on_failure == AuditOnFailure::FailClosed)
        return refuse(call, "refused: the audit log cannot be written (" + audit_->last_error() +
                                "), and audit.on_failure is fail_closed. Fix the log's disk or permissions; the server keeps answering.");
    auto slot = take_slot(call);
    if (!slot) return refuse(call, slot.error().message);
    call.slot = std::move(*slot);
    return std::nullopt;
}

void RunService::validate(Call& call) {
    auto timer = call.times.time("validate");
    call.in_force = controls_in_force();
    if (config_.policy.validation == ValidationMode::Off) {
        call.assessment.decision = security::Decision::Allow;
        call.assessment.risk = threat_model::Level::Low;
        call.assessment.reasons.push_back("validation is off (policy.validation=off)");
    } else {
        call.assessment = security::assess(call.interp->validator_language, call.req.code, call.in_force, policy_);
    }
    for (const auto& f : call.assessment.findings) metrics::record_finding(f.threat);
    call.outcome.take_assessment(call.assessment);
}

// Includes the wait for a person's answer when the verdict is `ask`.
std::optional<ToolResult> RunService::decide(Call& call) {
    {
        auto timer = call.times.time("decide");
        security::DecideInput in{call.assessment, config_.policy.validation, policy_, call.fingerprint, &trust_, asker(call.ctx),
                                 "the client cannot be asked (no elicitation capability)"};
        call.verdict = security::decide(in);
    }
    json assessment = call.assessment.to_json();
    record("decision", {{"decision", call.verdict.label}, {"how", call.verdict.how}, {"risk", assessment["risk"]},
                        {"findings", assessment["findings"]}, {"threats", assessment["threats"]},
                        {"reasons", assessment["reasons"]},
                        {"controls_in_force", std::vector<std::string>(call.in_force.begin(), call.in_force.end())},
                        {"code_sha256", sha256_hex(call.req.code)}, {"timings", call.times.to_json()}},
           call);
    call.outcome.decision = call.verdict.label;
    metrics::decisions(decision_level(call.verdict)).inc();
    if (call.verdict.decision == security::Decision::Allow) return std::nullopt;
    call.ending = metrics::ExecutionOutcome::Denied;
    std::ostringstream text;
    text << "denied (risk " << threat_model::to_string(call.assessment.risk) << "): " << call.verdict.how << "\n";
    for (const auto& f : call.assessment.findings) text << format_finding(f) << "\n";
    for (const auto& r : call.assessment.reasons) text << "reason: " << r << "\n";
    return ToolResult::error(text.str(), outcome_json(call.outcome));
}

// The session's workspace, the files the call brings, and the spec.
std::optional<ToolResult> RunService::prepare(Call& call) {
    auto timer = call.times.time("prepare");
    const Request& req = call.req;
    auto use = workspaces_.open(call.session_id, call.ctx.session ? call.ctx.session->principal : "local", req.workspace);
    if (!use) return fail(call, "workspace", use.error());
    call.use.emplace(std::move(*use));
    call.ws = &call.use->workspace();
    wsfs::Owner owner{call.ws->owner_uid(), call.ws->owner_gid()};
    for (const auto& [path, content] : req.files) {
        auto rel = wsfs::normalize_relative(path);
        if (!rel) return fail(call, "files", rel.error());
        if (Status st = wsfs::write_file(call.ws->dir_fd(), *rel, content, owner); !st) return fail(call, "files", st.error());
    }
    sandbox::SandboxSpec& spec = call.spec;
    spec.workspace_dir = call.ws->path();
    spec.network_fd = call.ws->network_fd();
    spec.group = call.ws->group_name();
    spec.host_uid = call.ws->owner_uid();
    spec.host_gid = call.ws->owner_gid();
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
        std::string path = "/kiln/main." + call.interp->extension;
        spec.files.push_back({path, req.code});
        spec.argv = {call.interp->path, path};
    }
    return std::nullopt;
}

std::optional<ToolResult> RunService::execute(Call& call) {
    auto timer = call.times.time("execute");
    sandbox::RunHooks hooks;
    hooks.stop = call.ctx.stop;
    const CallContext& ctx = call.ctx;
    const double before_run = call.elapsed_ms();
    hooks.on_progress = [&ctx, before_run](const sandbox::Progress& p) {
        ctx.progress(before_run + static_cast<double>(p.elapsed.count()), std::nullopt,
                     std::to_string(p.elapsed.count()) + " ms elapsed, " + std::to_string(p.stdout_bytes + p.stderr_bytes) +
                         " bytes of output");
    };
    auto result = runtime_.run(call.spec, hooks);
    if (!result) return fail(call, "the sandbox could not start", result.error());
    if (Status st = call.use->commit(); !st) return fail(call, "workspace", st.error());
    call.outcome.exec = std::move(*result);
    return std::nullopt;
}

ToolResult RunService::record_outcome(Call& call) {
    const sandbox::ExecResult& r = call.outcome.exec;
    const sandbox::Limits& l = call.spec.limits;
    call.times.add("jail_setup", r.timings.setup);
    call.times.add("jail_run", r.timings.run);
    call.times.add("jail_teardown", r.timings.teardown);
    metrics::jail_setup_seconds().observe(seconds(r.timings.setup));
    metrics::execution_seconds().observe(seconds(r.timings.run));
    call.ending = execution_outcome(r);
    record("execution",
           {{"language", call.req.language}, {"code_sha256", sha256_hex(call.req.code)},
            {"decision", call.verdict.label}, {"result", outcome_audit(call.outcome)},
            {"sandbox", {{"runtime", std::string(runtime_.name())},
                         {"limits", {{"memory_bytes", l.memory_bytes}, {"cpus", l.cpus}, {"pids", l.pids},
                                     {"timeout_ms", l.timeout.count()}, {"tmp_size_bytes", l.tmp_size_bytes}}}}},
            {"timings", call.times.to_json()}},
           call);
    bool failed = r.timed_out || r.oom_killed || r.cancelled || r.signal.has_value() || r.exit_code.value_or(1) != 0;
    return {summarize(r, call.assessment, call.req.language), outcome_json(call.outcome), failed, {}};
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
                         {"description", "files written into /workspace before the run"}}},
              {"workspace", workspace_arg_schema()}}},
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
                code_input_schema(s.interpreters(), {}), outcome_schema(), {false, true, false, false}};
    }
    const ToolDef& def() const override { return def_; }
    ToolResult call(const json& args, const CallContext& ctx) override {
        const auto parse_start = Clock::now();
        RunService::Request r;
        r.tool = "run_code";
        r.language = args["language"];
        r.code = args["code"];
        r.stdin_data = args.value("stdin", "");
        if (args.contains("timeout_seconds")) r.timeout_seconds = args["timeout_seconds"].get<std::int64_t>();
        if (args.contains("memory_mb")) r.memory_mb = args["memory_mb"].get<std::int64_t>();
        for (const auto& f : args.value("files", json::array())) r.files.emplace_back(f["path"], f["content"]);
        r.workspace = args.value("workspace", "");
        r.parse_time = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - parse_start);
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
                   {"memory_mb", {{"type", "integer"}, {"minimum", 16}}},
                   {"workspace", workspace_arg_schema()}}},
                 {"required", {"command"}},
                 {"additionalProperties", false}},
                outcome_schema(), {false, true, false, false}};
    }
    const ToolDef& def() const override { return def_; }
    ToolResult call(const json& args, const CallContext& ctx) override {
        const auto parse_start = Clock::now();
        RunService::Request r;
        r.tool = "run_command";
        r.language = "sh";
        r.code = args["command"];
        r.stdin_data = args.value("stdin", "");
        if (args.contains("timeout_seconds")) r.timeout_seconds = args["timeout_seconds"].get<std::int64_t>();
        if (args.contains("memory_mb")) r.memory_mb = args["memory_mb"].get<std::int64_t>();
        r.workspace = args.value("workspace", "");
        r.parse_time = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - parse_start);
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
