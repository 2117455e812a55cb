// Everything a serving Kiln needs behind its tools, built once from the
// configuration: workspaces, trust store, sandbox runtime, policy, audit
// log, and the registry of tools wired to them.
#pragma once

#include <memory>

#include "common/config.hpp"
#include "tools/registry.hpp"
#include "tools/trust_store.hpp"
#include "tools/workspace.hpp"

namespace kiln::tools {

class Toolbox {
public:
    static Result<std::unique_ptr<Toolbox>> create(const Config& config);

    const Registry& registry() const { return registry_; }
    WorkspaceManager& workspaces() { return *workspaces_; }
    // The MCP session ended: drop its workspace.
    void session_closed(const std::string& session_id);

private:
    explicit Toolbox(const Config& config) : config_(config) {}

    Config config_;
    std::unique_ptr<WorkspaceManager> workspaces_;
    std::unique_ptr<TrustStore> trust_;
    Registry registry_;
};

}  // namespace kiln::tools
