// The code-running tools: run_code, run_command, assess_code. Each run call
// is a pipeline of named phases, each timed:
//   admit -> validate -> decide -> prepare -> execute -> record
// admit records the call and checks it may run at all (interpreter, bounds,
// audit log, a run slot: waited for in a bounded queue); validate runs the
// validator; decide turns its verdict into allow or deny (security::decide:
// trust store, approval through elicitation, fallback); prepare makes the
// workspace and the sandbox spec; execute runs the jail; record writes the
// execution record and the answer, an LLM's text (content) and a
// program's (structuredContent, see run_outcome.hpp).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "common/config.hpp"
#include "sandbox/runtime.hpp"
#include "security/audit/audit_log.hpp"
#include "security/decide.hpp"
#include "security/language.hpp"
#include "security/policy.hpp"
#include "security/validator.hpp"
#include "tools/registry.hpp"
#include "tools/rich_content.hpp"
#include "security/trust_store.hpp"
#include "tools/interpreter_pool.hpp"
#include "tools/workspace.hpp"
#include "tools/workspace_store.hpp"

namespace kiln::tools {

// Which interpreters exist in the jail's root filesystem.
struct Interpreter {
    std::string language;  // "python", "bash", "sh", "javascript"
    std::string path;      // inside the jail
    std::string extension;
    security::Language validator_language;
};
std::vector<Interpreter> available_interpreters(const std::string& rootfs);

class RunService {
public:
    RunService(const Config& config, security::Policy policy, sandbox::Runtime& runtime, audit::AuditLog* audit,
               WorkspaceStore& workspaces, security::TrustStore& trust);

    struct Request {
        std::string tool;           // "run_code" | "run_command"
        std::string language;       // interpreter name; "sh" for run_command
        std::string code;
        std::string stdin_data;
        std::optional<std::int64_t> timeout_seconds;
        std::optional<std::int64_t> memory_mb;
        std::string image;  // empty: sandbox.image (or the host's binds)
        std::vector<std::pair<std::string, std::string>> files;
        // run_code in the workspace's persistent Python interpreter; reset
        // starts a fresh one first.
        bool persist = false, reset = false;
        std::string workspace;      // a workspace_create handle; empty: the session's own
        std::chrono::microseconds parse_time{};  // turning the arguments into this
    };
    ToolResult run(const Request& request, const CallContext& ctx);
    ToolResult assess_only(const std::string& language, const std::string& code, const CallContext& ctx);

    // Controls in force for a run now: what the runtime reports, plus the
    // ones Kiln itself provides while they really hold.
    std::set<std::string> controls_in_force() const;
    const security::Policy& policy() const { return policy_; }
    const std::vector<Interpreter>& interpreters() const { return interpreters_; }
    const Config& config() const { return config_; }
    sandbox::Runtime& runtime() { return runtime_; }
    nlohmann::json recent_audit(const std::string& session_id) const;
    // The session has ended: its recent records go with it (a server that
    // serves many sessions over HTTP would otherwise keep every one's).
    void forget_session(const std::string& session_id);
    // The workspace ended: its persistent interpreter ends with it.
    void end_interpreter(const std::string& workspace) { pool_.end(workspace); }
    const InterpreterPool& interpreter_pool() const { return pool_; }

private:
    struct Slot;
    struct Call;
    ToolResult run_phases(Call& call);
    // The phases, in order. Each returns the answer when the call ends there
    // (refused, denied, failed), or nothing to go on.
    std::optional<ToolResult> admit(Call& call);
    void validate(Call& call);
    std::optional<ToolResult> decide(Call& call);
    std::optional<ToolResult> prepare(Call& call);
    Status apply_image(sandbox::SandboxSpec& spec, const std::string& requested) const;
    std::optional<ToolResult> execute(Call& call);
    std::optional<ToolResult> execute_in_interpreter(Call& call);
    sandbox::SandboxSpec interpreter_spec(const Call& call) const;
    ToolResult record_outcome(Call& call);
    // Rich results (rich_content.hpp): before the run, a snapshot of the
    // workspace and, for Python, a directory for its figures; after it, the
    // image and resource_link items and the notes on what was left out.
    void prepare_rich(Call& call);
    void collect_rich(Call& call);

    const Interpreter* find_interpreter(const std::string& language) const;
    Result<std::unique_ptr<Slot>> take_slot(Call& call);
    std::optional<std::string> check_bounds(const Request& r) const;
    security::AskFn asker(const CallContext& ctx) const;
    security::AskFn round_trip_asker(const Call& call) const;
    std::optional<ToolResult> round_trip_pending(Call& call);
    // Answers a call stopped before the validator, recorded as `refused`.
    ToolResult refuse(Call& call, const std::string& reason);
    // Answers a call that failed after its decision, recorded as `error`.
    ToolResult fail(Call& call, const std::string& step, const Error& e);
    std::string record(const std::string& event, nlohmann::json fields, Call& call);

    Config config_;
    security::Policy policy_;
    sandbox::Runtime& runtime_;
    audit::AuditLog* audit_;
    WorkspaceStore& workspaces_;
    security::TrustStore& trust_;
    std::vector<Interpreter> interpreters_;
    rich::Limits rich_limits_;
    std::atomic<std::uint64_t> next_figure_dir_{1};

    mutable std::mutex mutex_;
    std::map<std::string, unsigned> runs_by_session_;
    unsigned runs_total_ = 0;
    unsigned waiting_ = 0;                  // calls queued for a slot
    std::condition_variable_any slot_freed_;
    std::map<std::string, std::deque<nlohmann::json>> recent_;
    Result<std::string> driver_;  // kiln_driver.py's text, read at start
    InterpreterPool pool_;        // last: its interpreters end first
};

void register_run_tools(Registry& registry, RunService& service);

}  // namespace kiln::tools
