#include "tools/toolbox.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "tools/debug_tools.hpp"
#include "tools/file_tools.hpp"

namespace kiln::tools {

Result<std::unique_ptr<Toolbox>> Toolbox::create(const Config& config) {
    std::unique_ptr<Toolbox> box(new Toolbox(config));

    WorkspaceOptions ws;
    ws.root_dir = config.server.state_dir + "/workspaces";
    ws.size_bytes = config.workspace.size_bytes;
    ws.idle_ttl = config.workspace.idle_ttl;
    ws.max_sessions = config.workspace.max_sessions;
    ws.owner_uid = ::geteuid();
    ws.owner_gid = ::getegid();
    box->workspaces_ = std::make_unique<WorkspaceManager>(ws);
    if (Status st = box->workspaces_->remove_leftovers(); !st)
        return Error(st.error()).wrap("prepare workspaces under " + ws.root_dir);
    box->workspaces_->start_reaper(std::chrono::milliseconds(std::min<long long>(60'000, ws.idle_ttl.count())));
    box->trust_ = std::make_unique<TrustStore>(config.server.state_dir + "/trust.json");

    register_file_tools(box->registry_, *box->workspaces_);
    if (config.server.test_tools) register_debug_tools(box->registry_);
    return box;
}

void Toolbox::session_closed(const std::string& session_id) { workspaces_->release(session_id); }

}  // namespace kiln::tools
