// Everything a serving Kiln needs behind its tools, built once from the
// configuration: workspaces, trust store, sandbox runtime, policy, audit
// log, and the registry of tools and resources wired to them.
#pragma once

#include <memory>

#include "common/config.hpp"
#include "sandbox/runtime.hpp"
#include "security/audit/audit_log.hpp"
#include "security/policy.hpp"
#include "tools/registry.hpp"
#include "tools/report_tool.hpp"
#include "tools/resources.hpp"
#include "tools/run_tools.hpp"
#include "security/trust_store.hpp"
#include "tools/workspace.hpp"
#include "tools/workspace_store.hpp"

namespace kiln::tools {

// The runtime sandbox.runtime names: the native jail (with `native`), or
// the Docker runtime (sandbox.docker.*) with a warm pool of
// docker_pool_size containers made with the policy's limits.
Result<std::unique_ptr<sandbox::Runtime>> make_runtime(const Config& config, const security::Policy& policy,
                                                       const sandbox::NativeOptions& native, unsigned docker_pool_size);

class Toolbox {
public:
    static Result<std::unique_ptr<Toolbox>> create(const Config& config);
    ~Toolbox();

    const Registry& registry() const { return registry_; }
    const ResourceSet& resources() const { return resources_; }
    WorkspaceManager& workspaces() { return *workspaces_; }
    WorkspaceStore& store() { return *store_; }
    RunService& runs() { return *runs_; }
    audit::AuditLog* audit() { return audit_.get(); }
    // The MCP session ended: drop its workspace and record it.
    void session_closed(const std::string& session_id);
    // Can a call be served now? The runtime starts a jail (/bin/true under
    // the policy's limits) and the audit log takes records. For /readyz.
    Status ready();

private:
    explicit Toolbox(const Config& config) : config_(config) {}
    void add_resources();
    Status check_controls();
    Status open_store();

    Config config_;
    std::unique_ptr<audit::AuditLog> audit_;
    std::unique_ptr<sandbox::Runtime> runtime_;
    security::Policy policy_;
    std::unique_ptr<WorkspaceManager> workspaces_;
    std::unique_ptr<WorkspaceStore> store_;
    std::unique_ptr<security::TrustStore> trust_;
    std::unique_ptr<RunService> runs_;
    std::unique_ptr<SelftestReports> reports_;
    Registry registry_;
    ResourceSet resources_;
};

// The memory limit of a session's run group (WorkspaceOptions::session_memory_bytes).
std::uint64_t session_memory_limit(const Config& config, const security::Policy& policy);

}  // namespace kiln::tools
