// Workspace file tools: write_file, read_file, list_files, delete_file,
// reset_workspace, and workspace_create / workspace_delete for explicit
// workspaces (tools/workspace_store.hpp). Paths are relative to /workspace and confined by the
// kernel (see workspace_fs.hpp).
#pragma once

#include "tools/registry.hpp"
#include "tools/workspace.hpp"
#include "tools/workspace_store.hpp"
#include "tools/workspace_fs.hpp"

namespace kiln::tools {

struct FileToolLimits {
    std::uint64_t max_write_bytes = 16ull << 20;
    std::uint64_t max_read_bytes = 16ull << 20;
    std::size_t max_list_entries = 10'000;
    // list_files' whole response; each path appears in it twice (the text
    // and structuredContent), so the listing itself gets half.
    std::size_t max_list_bytes = 1 << 20;
    std::size_t max_list_depth = wsfs::kMaxListDepth;
};

void register_file_tools(Registry& registry, WorkspaceStore& workspaces, FileToolLimits limits = {});

}  // namespace kiln::tools
