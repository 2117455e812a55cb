// The code-running tools: run_code, run_command, assess_code. Each call goes
// validator -> policy decision (with approval through elicitation or the
// trust store) -> sandbox runtime -> audit log, and answers with a result an
// LLM can read (content) and a program can parse (structuredContent).
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "common/config.hpp"
#include "sandbox/runtime.hpp"
#include "security/audit/audit_log.hpp"
#include "security/language.hpp"
#include "security/policy.hpp"
#include "security/validator.hpp"
#include "tools/registry.hpp"
#include "tools/trust_store.hpp"
#include "tools/workspace.hpp"

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
               WorkspaceManager& workspaces, TrustStore& trust);

    struct Request {
        std::string tool;           // "run_code" | "run_command"
        std::string language;       // interpreter name; "sh" for run_command
        std::string code;
        std::string stdin_data;
        std::optional<std::int64_t> timeout_seconds;
        std::optional<std::int64_t> memory_mb;
        std::vector<std::pair<std::string, std::string>> files;
    };
    ToolResult run(const Request& request, const CallContext& ctx);
    ToolResult assess_only(const std::string& language, const std::string& code, const CallContext& ctx);

    // Controls in force for a run now: what the runtime reports, plus the
    // ones Kiln itself provides while they really hold.
    std::set<std::string> controls_in_force() const;
    const security::Policy& policy() const { return policy_; }
    const std::vector<Interpreter>& interpreters() const { return interpreters_; }
    sandbox::Runtime& runtime() { return runtime_; }
    nlohmann::json recent_audit(const std::string& session_id) const;

private:
    struct Slot;
    Result<std::unique_ptr<Slot>> take_slot(const std::string& session_id);
    std::optional<std::string> check_bounds(const Request& r) const;
    security::Decision resolve_ask(const security::Assessment& a, const std::string& fingerprint,
                                   const CallContext& ctx, std::string& how);
    std::string record(const std::string& event, nlohmann::json fields, const CallContext& ctx);

    Config config_;
    security::Policy policy_;
    sandbox::Runtime& runtime_;
    audit::AuditLog* audit_;
    WorkspaceManager& workspaces_;
    TrustStore& trust_;
    std::vector<Interpreter> interpreters_;

    mutable std::mutex mutex_;
    std::map<std::string, unsigned> runs_by_session_;
    unsigned runs_total_ = 0;
    std::map<std::string, std::deque<nlohmann::json>> recent_;
};

void register_run_tools(Registry& registry, RunService& service);

}  // namespace kiln::tools
