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
#include "tools/figure_hook.hpp"
#include "tools/run_outcome.hpp"
#include "sandbox/image_store.hpp"
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

// An MCP image content item from a figure (the one place it is built).
json image_content(const CellImage& image) {
    return {{"type", "image"}, {"data", image.png_base64}, {"mimeType", "image/png"}};
}

json interpreter_json(const CellResult& c, bool fresh) {
    json images = json::array();
    for (const auto& i : c.images) images.push_back({{"width", i.width}, {"height", i.height}});
    return {{"generation", c.generation}, {"started", fresh}, {"value", c.value ? json(*c.value) : json(nullptr)},
            {"value_truncated", c.value_truncated}, {"error", c.error}, {"images", images},
            {"images_dropped", c.images_dropped}, {"interrupted", c.interrupted},
            {"state_lost", c.state_lost ? json(*c.state_lost) : json(nullptr)}};
}

// What an agent reads first after a persistent call: whether its variables
// are still there, then output, value, error and figures.
std::string summarize_cell(const CellResult& c, bool fresh, const security::Assessment& a) {
    const sandbox::ExecResult& r = c.exec;
    std::ostringstream out;
    if (c.state_lost) out << "interpreter restarted: " << *c.state_lost;
    else if (c.interrupted) out << (r.cancelled ? "cancelled" : "interrupted at the time limit") << " (KeyboardInterrupt)";
    else out << (c.error.is_null() ? "ok" : "error");
    out << " (python interpreter " << c.generation << (fresh ? ", new" : "") << ", " << r.duration.count() << " ms, cpu "
        << r.cpu.count() << " ms, peak memory " << format_size(r.peak_memory_bytes) << ")\n";
    if (c.state_lost)
        out << "STATE LOST: every variable, import and loaded data of earlier calls is gone; the next call starts a new "
               "interpreter, so run your setup code (imports, loading data) again.\n";
    else if (c.interrupted)
        out << "The call was stopped with KeyboardInterrupt; the interpreter and its variables are kept.\n";
    if (!r.stdout_data.empty()) out << "--- stdout ---\n" << r.stdout_data << (r.stdout_data.back() == '\n' ? "" : "\n");
    if (r.stdout_truncated) out << "[stdout truncated]\n";
    if (!r.stderr_data.empty()) out << "--- stderr ---\n" << r.stderr_data << (r.stderr_data.back() == '\n' ? "" : "\n");
    if (r.stderr_truncated) out << "[stderr truncated]\n";
    if (c.value) out << "--- value ---\n" << *c.value << "\n" << (c.value_truncated ? "[value truncated]\n" : "");
    if (!c.error.is_null()) out << "--- error ---\n" << c.error.value("traceback", "");
    if (!c.images.empty()) out << c.images.size() << " figure(s) attached as PNG images\n";
    if (c.images_dropped)
        out << c.images_dropped << " figure(s) dropped (past workspace.max_images or workspace.max_image_size)\n";
    for (const auto& f : a.findings) out << "finding " << format_finding(f) << "\n";
    for (const auto& n : r.notes) out << "note: " << n << "\n";
    return out.str();
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
    // After ws: the figure directory is removed before the workspace goes.
    std::optional<rich::Snapshot> before;
    std::optional<rich::FigureDir> figures;
    rich::Content rich;
    RunOutcome outcome;
    std::optional<CellResult> cell;  // persist: what the interpreter answered
    bool fresh_interpreter = false;  // persist: started for this call
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
      interpreters_(available_interpreters(sandbox::image::configured_root(config))),
      driver_(load_interpreter_driver()),
      pool_(InterpreterLimits{config.interpreter.idle_timeout, config.interpreter.max_per_server,
                              config.interpreter.max_per_principal}) {
    rich_limits_.max_images = config.workspace.max_images;
    rich_limits_.max_image_bytes = config.workspace.max_image_bytes;
    rich_limits_.max_links = config.workspace.max_file_links;
    if (!driver_) spdlog::warn("run_code persist is unavailable: {}", driver_.error().what());
    pool_.start_reaper(std::min<std::chrono::milliseconds>(std::chrono::seconds(60), config.interpreter.idle_timeout / 2));
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
    if (r.reset && !r.persist) return "'reset' restarts the persistent interpreter: it needs 'persist': true";
    if (r.persist && r.language != "python")
        return "'persist' keeps a Python interpreter: it needs 'language': \"python\" (got \"" + r.language + "\")";
    if (r.persist && r.memory_mb)
        return "'memory_mb' does not apply with 'persist': the interpreter's memory limit is interpreter.memory (" +
               format_size(config_.interpreter.memory_bytes) + ")";
    if (r.persist && !r.stdin_data.empty()) return "'stdin' does not apply with 'persist': the interpreter's stdin is Kiln's";
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

namespace {

// The elicitation that asks a person to approve the code.
json approval_request(const security::Assessment& a) {
    std::ostringstream msg;
    msg << "Kiln needs your approval to run this code (risk " << threat_model::to_string(a.risk) << ").\n";
    for (const auto& f : a.findings) msg << "- " << format_finding(f) << "\n";
    return {{"message", msg.str()},
            {"requestedSchema",
             {{"type", "object"},
              {"properties",
               {{"choice", {{"type", "string"}, {"title", "Decision"},
                            {"enum", {"approve_once", "approve_and_remember", "deny"}},
                            {"enumNames", {"Approve once", "Approve and remember this code", "Deny"}}}}}},
              {"required", {"choice"}}}}};
}

// The person's answer in an ElicitResult; anything but an accepted
// approval is a denial.
security::Answer approval_answer(const json& reply, const std::string& who) {
    std::string action = reply.is_object() ? reply.value("action", "") : "";
    std::string choice = reply.is_object() && reply.contains("content") && reply["content"].is_object()
                             ? reply["content"].value("choice", "") : "";
    security::Answer answer;
    answer.who = who;
    answer.said = action.empty() ? std::string("no answer") : action + (choice.empty() ? "" : "/" + choice);
    if (action == "accept" && choice == "approve_once") answer.choice = security::Answer::Choice::ApproveOnce;
    else if (action == "accept" && choice == "approve_and_remember") answer.choice = security::Answer::Choice::ApproveAndRemember;
    if (action == "accept" && answer.choice != security::Answer::Choice::Deny) answer.said = choice;
    return answer;
}

// The key of the approval in inputRequests / inputResponses.
constexpr const char* kApprovalInput = "kiln_approval";

}  // namespace

// Approval through elicitation, when this client can be asked.
security::AskFn RunService::asker(const CallContext& ctx) const {
    if (!ctx.session || !ctx.session->client_can_elicit || !ctx.request_fn) return {};
    return [&ctx](const security::Assessment& a) -> Result<security::Answer> {
        auto reply = ctx.request_fn("elicitation/create", approval_request(a));
        if (!reply) return reply.error();
        return approval_answer(*reply, ctx.session->client_name);
    };
}

// Approval in a stateless call: the first attempt leaves an
// InputRequiredResult whose requestState is bound to this exact code; the
// retry's answer counts only with that state, once.
security::AskFn RunService::round_trip_asker(const Call& call) const {
    const CallContext& ctx = call.ctx;
    if (!ctx.round_trip || !ctx.session || !ctx.session->client_can_elicit) return {};
    std::string binding = "tools/call " + call.req.tool + " " + call.req.language + " sha256:" + sha256_hex(call.req.code);
    return [&ctx, binding](const security::Assessment& a) -> Result<security::Answer> {
        RoundTrip& rt = *ctx.round_trip;
        const bool answered = rt.input_responses.is_object() && rt.input_responses.contains(kApprovalInput);
        if (!rt.request_state.empty() && answered) {
            if (auto refusal = rt.redeem(binding)) {
                rt.refused = *refusal;
                return make_error("approval", "requestState refused: " + *refusal);
            }
            return approval_answer(rt.input_responses[kApprovalInput], ctx.session->client_name);
        }
        rt.input_required = {{"inputRequests", {{kApprovalInput, {{"method", "elicitation/create"},
                                                                   {"params", approval_request(a)}}}}},
                             {"requestState", rt.mint(binding)}};
        return make_error("approval", "waiting for the client's answer (InputRequiredResult)");
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

// A stateless call that asked for input, or brought back a state that does
// not verify, ends here: the one is answered with the InputRequiredResult
// (the session sends it), the other refused whatever the ask fallback says.
std::optional<ToolResult> RunService::round_trip_pending(Call& call) {
    RoundTrip* rt = call.ctx.round_trip;
    if (!rt) return std::nullopt;
    if (!rt->refused.empty()) return refuse(call, "approval refused: " + rt->refused);
    if (rt->input_required.is_null()) return std::nullopt;
    record("decision", {{"decision", "input_required"}, {"how", "approval asked through InputRequiredResult"},
                        {"code_sha256", sha256_hex(call.req.code)}},
           call);
    call.ending = metrics::ExecutionOutcome::Denied;
    call.outcome.decision = "input_required";
    return ToolResult{"approval needed: answer the input request and retry with its requestState",
                      outcome_json(call.outcome), false, {}};
}

// Includes the wait for a person's answer when the verdict is `ask`.
std::optional<ToolResult> RunService::decide(Call& call) {
    {
        auto timer = call.times.time("decide");
        security::DecideInput in{call.assessment, config_.policy.validation, policy_, call.fingerprint, &trust_,
                                 call.ctx.round_trip ? round_trip_asker(call) : asker(call.ctx),
                                 "the client cannot be asked (no elicitation capability)"};
        call.verdict = security::decide(in);
    }
    if (auto answer = round_trip_pending(call)) return *answer;
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
// The call's own image (sandbox.call_images) or the configured one; either
// must be pinned in sandbox.allowed_images (C005).
Status RunService::apply_image(sandbox::SandboxSpec& spec, const std::string& requested) const {
    if (requested.empty()) return sandbox::image::apply_configured(spec, config_);
    if (!config_.sandbox.call_images)
        return make_error("image " + requested, "a call may not pick its image unless sandbox.call_images is true", EPERM);
    sandbox::image::Store store(sandbox::image::store_dir(config_.server.state_dir));
    auto img = sandbox::image::resolve_allowed(store, requested, config_.sandbox.allowed_images);
    if (!img) return img.error();
    sandbox::image::apply(spec, *img);
    return {};
}

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
    if (Status st = apply_image(spec, req.image); !st) return fail(call, "image", st.error());
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
    prepare_rich(call);
    return std::nullopt;
}

// Taken after the call's own `files` are written: those are the agent's,
// not the run's, and come back as links only if the run changes them.
void RunService::prepare_rich(Call& call) {
    auto before = rich::snapshot(call.ws->dir_fd(), rich_limits_);
    if (before) call.before = std::move(*before);
    else call.rich.notes.push_back("files the run creates are not linked: " + before.error().what());
    // A persistent interpreter returns its figures itself (kiln_driver.py).
    if (call.req.tool != "run_code" || call.interp->language != "python" || call.req.persist) return;
    auto dir = rich::FigureDir::create(call.ws->dir_fd(), next_figure_dir_.fetch_add(1),
                                       {call.ws->owner_uid(), call.ws->owner_gid()});
    if (!dir) {
        call.rich.notes.push_back("matplotlib figures are not returned as images: " + dir.error().what());
        return;
    }
    figure_hook::install(call.spec, dir->path());
    call.figures.emplace(std::move(*dir));
}

void RunService::collect_rich(Call& call) {
    auto timer = call.times.time("rich");
    if (call.figures) {
        rich::add_images(call.rich, call.figures->take(rich_limits_), rich_limits_);
        call.figures.reset();
    }
    call.outcome.images = call.rich.items.size();
    if (call.before) {
        auto after = rich::snapshot(call.ws->dir_fd(), rich_limits_);
        if (after) {
            auto changes = rich::changed_files(*call.before, *after);
            auto walk = after->truncated != wsfs::Truncation::None ? after->truncated : call.before->truncated;
            rich::add_file_links(call.rich, changes, walk, rich_limits_);
            if (changes.size() > rich_limits_.max_links) changes.resize(rich_limits_.max_links);
            call.outcome.files = std::move(changes);
        } else {
            call.rich.notes.push_back("files the run created are not linked: " + after.error().what());
        }
    }
    for (auto& n : call.rich.notes) call.outcome.exec.notes.push_back(std::move(n));
}

std::optional<ToolResult> RunService::execute(Call& call) {
    if (call.req.persist) return execute_in_interpreter(call);
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

// The one-shot spec with the driver for program and interpreter.memory for
// the whole jail; limits.timeout becomes its lifetime CPU budget (RLIMIT_CPU),
// the call's own limits are the interpreter's to watch.
sandbox::SandboxSpec RunService::interpreter_spec(const Call& call) const {
    constexpr std::chrono::hours kLifetimeCpu{24};
    sandbox::SandboxSpec spec = call.spec;
    // matplotlib asks fontconfig (fc-list) for fonts; the host's /etc/fonts
    // is not in the jail, and without a config it prints an error per call.
    spec.files = {{"/kiln/kiln_driver.py", *driver_},
                  {"/kiln/fonts.conf", "<?xml version=\"1.0\"?><fontconfig><dir>/usr/share/fonts</dir>"
                                       "<cachedir>/tmp/fontconfig</cachedir></fontconfig>\n"}};
    spec.argv = {call.interp->path, "/kiln/kiln_driver.py"};
    spec.env.push_back("MPLBACKEND=module://kiln_matplotlib");
    spec.env.push_back("FONTCONFIG_FILE=/kiln/fonts.conf");
    // Debian's matplotlib looks for /etc/matplotlibrc, which the jail has not.
    spec.env.push_back("MATPLOTLIBRC=/usr/share/matplotlib/mpl-data/matplotlibrc");
    spec.limits.memory_bytes = config_.interpreter.memory_bytes;
    spec.limits.timeout = kLifetimeCpu;
    return spec;
}

std::optional<ToolResult> RunService::execute_in_interpreter(Call& call) {
    auto timer = call.times.time("execute");
    if (!driver_) return fail(call, "the persistent interpreter is unavailable", driver_.error());
    const std::string principal = call.ctx.session ? call.ctx.session->principal : "local";
    // One interpreter per workspace: the session's own, or a workspace_create
    // handle's. A shared store copies a workspace in and out per call, so a
    // live jail could not keep it bound across calls.
    if (!call.req.workspace.empty() && workspaces_.kind() == WorkspaceStoreKind::Shared)
        return fail(call, "persist",
                    make_error("interpreter", "run_code persist needs a workspace that stays on this machine: "
                                              "workspace.store is shared; use the session's own workspace (no "
                                              "`workspace` argument) or a local store"));
    const std::string key = call.req.workspace.empty() ? call.session_id : "workspace:" + call.req.workspace;
    auto entry = pool_.entry(key, principal);
    if (!entry) return fail(call, "no persistent interpreter", entry.error());
    InterpreterPool::Entry& e = **entry;
    std::lock_guard busy(e.mutex);
    if (call.req.reset) e.interpreter.reset();
    std::vector<std::string> notes;
    if (e.interpreter && !e.interpreter->alive()) {
        e.interpreter.reset();
        notes.push_back("the interpreter had ended since the last call: this call runs in a new one, without earlier variables");
    }
    if (!e.interpreter) {
        auto started = pool_.start(runtime_, interpreter_spec(call));
        if (!started) return fail(call, "the persistent interpreter could not start", started.error());
        e.workspace = call.use->keep_workspace();
        e.interpreter = std::move(*started);
        call.fresh_interpreter = true;
    }
    const sandbox::Limits& l = call.spec.limits;
    CellRequest request{call.req.code, l.timeout,
                        std::chrono::duration_cast<std::chrono::milliseconds>(l.timeout * std::max(1.0, l.cpus)),
                        l.output_cap_bytes, static_cast<unsigned>(rich_limits_.max_images), rich_limits_.max_image_bytes, call.ctx.stop};
    call.cell = e.interpreter->run(request);
    e.last_used = Clock::now();
    if (call.cell->state_lost) e.interpreter.reset();
    call.ws->touch();
    call.outcome.exec = call.cell->exec;
    for (auto& n : notes) call.outcome.exec.notes.push_back(std::move(n));
    call.outcome.interpreter = interpreter_json(*call.cell, call.fresh_interpreter);
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
    // A persistent interpreter's figures come first, as the one-shot hook's would.
    if (call.cell)
        for (const auto& img : call.cell->images) call.rich.items.push_back(image_content(img));
    collect_rich(call);
    json interpreter = nullptr;
    if (call.cell)
        interpreter = {{"generation", call.cell->generation}, {"started", call.fresh_interpreter},
                       {"interrupted", call.cell->interrupted}, {"state_lost", call.cell->state_lost.value_or("")}};
    record("execution",
           {{"language", call.req.language}, {"interpreter", interpreter}, {"code_sha256", sha256_hex(call.req.code)},
            {"decision", call.verdict.label}, {"result", outcome_audit(call.outcome)},
            {"sandbox", {{"runtime", std::string(runtime_.name())},
                         {"limits", {{"memory_bytes", l.memory_bytes}, {"cpus", l.cpus}, {"pids", l.pids},
                                     {"timeout_ms", l.timeout.count()}, {"tmp_size_bytes", l.tmp_size_bytes}}}}},
            {"timings", call.times.to_json()}},
           call);
    bool failed = r.timed_out || r.oom_killed || r.cancelled || r.signal.has_value() || r.exit_code.value_or(1) != 0;
    std::string text = call.cell ? summarize_cell(*call.cell, call.fresh_interpreter, call.assessment)
                                 : summarize(r, call.assessment, call.req.language);
    return {std::move(text), outcome_json(call.outcome), failed, std::move(call.rich.items)};
}

namespace {

// `image` is offered only when the operator lets calls pick one.
void add_image_argument(json& schema, const Config& config) {
    if (config.sandbox.call_images)
        schema["properties"]["image"] = {{"type", "string"}, {"minLength", 1},
                                         {"description", "an image of the server's allowlist (sandbox.allowed_images) as the jail's root"}};
}

json code_input_schema(const std::vector<Interpreter>& interps, const Config& config) {
    json langs = json::array();
    for (const auto& i : interps) langs.push_back(i.language);
    json schema = {{"type", "object"},
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
              {"persist", {{"type", "boolean"},
                           {"description", "python only: run in this workspace's persistent interpreter, so variables, "
                                           "imports and loaded data stay for the next persist call (like a notebook); "
                                           "the last expression's value and matplotlib figures (as images) come back"}}},
              {"reset", {{"type", "boolean"},
                         {"description", "with persist: start a fresh interpreter first (all variables are dropped)"}}},

              {"workspace", workspace_arg_schema()}}},
            {"required", {"language", "code"}},
            {"additionalProperties", false}};
    add_image_argument(schema, config);
    return schema;
}

class RunCode final : public Tool {
public:
    explicit RunCode(RunService& s) : s_(s) {
        def_ = {"run_code", "Run code in the sandbox",
                "Runs a program in an isolated sandbox (no network, read-only system, limited memory, CPU and time). "
                "The session's files are at /workspace, which is the working directory and persists between calls. "
                "The code is checked by Kiln's security validator first; risky code may be denied or need approval. "
                "With persist: true (python), the code runs in the workspace's persistent interpreter instead: "
                "state survives between calls until reset: true, an idle timeout, or the interpreter is killed "
                "(the answer says so).",
                code_input_schema(s.interpreters(), s.config()), outcome_schema(), {false, true, false, false}};
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
        r.image = args.value("image", "");
        for (const auto& f : args.value("files", json::array())) r.files.emplace_back(f["path"], f["content"]);
        r.persist = args.value("persist", false);
        r.reset = args.value("reset", false);
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
        add_image_argument(def_.input_schema, s.config());
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
        r.image = args.value("image", "");
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
