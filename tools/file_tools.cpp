#include "tools/file_tools.hpp"

#include "common/text.hpp"
#include "common/units.hpp"
#include "tools/workspace_fs.hpp"

namespace kiln::tools {
namespace {

using nlohmann::json;

const json kPathSchema = {{"type", "string"},
                          {"minLength", 1},
                          {"maxLength", 4096},
                          {"description", "path relative to /workspace, e.g. \"data/input.csv\""}};

json object_schema(json properties, json required) {
    return {{"type", "object"}, {"properties", std::move(properties)}, {"required", std::move(required)}, {"additionalProperties", false}};
}

// The schema of a tool that works in a workspace: its own properties and
// the optional `workspace` handle.
json workspace_schema(json properties, json required) {
    properties["workspace"] = workspace_arg_schema();
    return object_schema(std::move(properties), std::move(required));
}

const std::string& principal_of(const CallContext& ctx) {
    static const std::string local = "local";
    return ctx.session ? ctx.session->principal : local;
}

// Base for tools that work on a workspace: the session's own, or the one
// the `workspace` argument names.
class WorkspaceTool : public Tool {
public:
    WorkspaceTool(WorkspaceStore& workspaces, FileToolLimits limits) : workspaces_(workspaces), limits_(limits) {}

protected:
    Result<WorkspaceUse> workspace(const CallContext& ctx, const json& args,
                                   WorkspaceAccess access = WorkspaceAccess::Write) const {
        return workspaces_.open(ctx.session ? ctx.session->id : "default", principal_of(ctx), args.value("workspace", ""),
                                access);
    }

    static ToolResult fail(const std::string& tool, const Error& e) { return ToolResult::error(tool + ": " + e.what()); }

    WorkspaceStore& workspaces_;
    FileToolLimits limits_;
};

class WriteFile final : public WorkspaceTool {
public:
    using WorkspaceTool::WorkspaceTool;
    const ToolDef& def() const override {
        static const ToolDef d{
            "write_file", "Write a workspace file",
            "Writes a file under /workspace (created with its parent directories, replaced if it exists). "
            "Files persist between calls of this session and are visible to run_code and run_command at /workspace.",
            workspace_schema({{"path", kPathSchema},
                           {"content", {{"type", "string"}, {"description", "file content, as text or base64"}}},
                           {"encoding", {{"type", "string"}, {"enum", {"utf-8", "base64"}}, {"default", "utf-8"}}}},
                          {"path", "content"}),
            object_schema({{"path", {{"type", "string"}}}, {"bytes_written", {{"type", "integer"}}}}, {"path", "bytes_written"}),
            {false, true, true, false}};
        return d;
    }
    ToolResult call(const json& args, const CallContext& ctx) override {
        auto path = wsfs::normalize_relative(args["path"].get<std::string>());
        if (!path) return fail("write_file", path.error());
        std::string content = args["content"].get<std::string>();
        if (args.value("encoding", "utf-8") == "base64") {
            auto bytes = base64_decode(content);
            if (!bytes) return ToolResult::error("write_file: 'content' is not valid base64 (encoding is \"base64\")");
            content = std::move(*bytes);
        }
        if (content.size() > limits_.max_write_bytes)
            return ToolResult::error("write_file: 'content' is " + format_size(content.size()) + "; the limit is " +
                                     format_size(limits_.max_write_bytes) + " per file");
        auto ws = workspace(ctx, args);
        if (!ws) return fail("write_file", ws.error());
        if (Status st = wsfs::write_file(ws->dir_fd(), *path, content, ws->owner()); !st) return fail("write_file", st.error());
        if (Status st = ws->commit(); !st) return fail("write_file", st.error());
        json sc = {{"path", *path}, {"bytes_written", content.size()}};
        return {"Wrote " + std::to_string(content.size()) + " bytes to /workspace/" + *path, sc, false, {}};
    }
};

class ReadFile final : public WorkspaceTool {
public:
    using WorkspaceTool::WorkspaceTool;
    const ToolDef& def() const override {
        static const ToolDef d{
            "read_file", "Read a workspace file",
            "Reads a file under /workspace. Text comes back as is; binary content comes back base64-encoded "
            "(encoding \"base64\") and as an embedded resource.",
            workspace_schema({{"path", kPathSchema},
                           {"max_bytes", {{"type", "integer"}, {"minimum", 1}, {"maximum", 16 << 20}, {"default", 1 << 20}}}},
                          {"path"}),
            object_schema({{"path", {{"type", "string"}}},
                           {"size", {{"type", "integer"}}},
                           {"truncated", {{"type", "boolean"}}},
                           {"encoding", {{"type", "string"}, {"enum", {"utf-8", "base64"}}}},
                           {"content", {{"type", "string"}}}},
                          {"path", "size", "truncated", "encoding", "content"}),
            {true, false, true, false}};
        return d;
    }
    ToolResult call(const json& args, const CallContext& ctx) override {
        auto path = wsfs::normalize_relative(args["path"].get<std::string>());
        if (!path) return fail("read_file", path.error());
        auto ws = workspace(ctx, args, WorkspaceAccess::Read);
        if (!ws) return fail("read_file", ws.error());
        auto data = wsfs::read_file(ws->dir_fd(), *path, args.value("max_bytes", std::uint64_t{1} << 20));
        if (!data) return fail("read_file", data.error());
        bool text = is_valid_utf8(data->bytes);
        json sc = {{"path", *path}, {"size", data->size}, {"truncated", data->truncated},
                   {"encoding", text ? "utf-8" : "base64"}, {"content", text ? data->bytes : base64_encode(data->bytes)}};
        std::string note = data->truncated ? "\n[truncated: showing " + std::to_string(data->bytes.size()) + " of " +
                                                 std::to_string(data->size) + " bytes; raise max_bytes to see more]"
                                           : "";
        ToolResult r{text ? data->bytes + note
                          : "/workspace/" + *path + " is binary (" + std::to_string(data->size) +
                                " bytes); its base64 content is in structuredContent.content and the embedded resource" + note,
                     sc, false, {}};
        if (!text)
            r.extra_content.push_back({{"type", "resource"},
                                       {"resource", {{"uri", "file:///workspace/" + *path},
                                                     {"mimeType", "application/octet-stream"},
                                                     {"blob", sc["content"]}}}});
        return r;
    }
};

class ListFiles final : public WorkspaceTool {
public:
    using WorkspaceTool::WorkspaceTool;
    const ToolDef& def() const override {
        static const ToolDef d{
            "list_files", "List workspace files",
            "Lists a directory under /workspace (the whole workspace by default). Symlinks are listed, never followed.",
            workspace_schema({{"path", {{"type", "string"}, {"maxLength", 4096}, {"default", "."}}},
                           {"recursive", {{"type", "boolean"}, {"default", false}}}},
                          json::array()),
            object_schema({{"path", {{"type", "string"}}},
                           {"entries", {{"type", "array"},
                                        {"items", object_schema({{"path", {{"type", "string"}}},
                                                                 {"type", {{"type", "string"}, {"enum", {"file", "directory", "symlink", "other"}}}},
                                                                 {"size", {{"type", "integer"}}}},
                                                                {"path", "type", "size"})}}},
                           {"truncated", {{"type", "boolean"}}},
                           {"truncated_reason", {{"type", "string"}, {"enum", {"entries", "bytes", "depth", "changed"}}}}},
                          {"path", "entries", "truncated"}),
            {true, false, true, false}};
        return d;
    }
    ToolResult call(const json& args, const CallContext& ctx) override {
        auto path = wsfs::normalize_relative(args.value("path", "."), true);
        if (!path) return fail("list_files", path.error());
        auto ws = workspace(ctx, args, WorkspaceAccess::Read);
        if (!ws) return fail("list_files", ws.error());
        wsfs::ListLimits limits{limits_.max_list_entries, limits_.max_list_bytes / 2, limits_.max_list_depth};
        auto listing = wsfs::list(ws->dir_fd(), *path, args.value("recursive", false), limits);
        if (!listing) return fail("list_files", listing.error());
        json list = json::array();
        std::string text;
        for (const auto& e : listing->entries) {
            list.push_back({{"path", e.path}, {"type", e.type}, {"size", e.size}});
            text += e.path + (e.type == "directory" ? "/" : "") +
                    (e.type == "file" ? "  (" + std::to_string(e.size) + " bytes)" : e.type == "symlink" ? "  (symlink)" : "") + "\n";
        }
        if (listing->entries.empty()) text = "(empty)\n";
        json sc = {{"path", *path}, {"entries", list}, {"truncated", listing->truncated != wsfs::Truncation::None}};
        if (listing->truncated != wsfs::Truncation::None) {
            sc["truncated_reason"] = wsfs::to_string(listing->truncated);
            text += truncation_note(listing->truncated);
        }
        return {text, sc, false, {}};
    }

private:
    std::string truncation_note(wsfs::Truncation why) const {
        switch (why) {
            case wsfs::Truncation::None: return "";
            case wsfs::Truncation::Entries:
                return "[listing stopped at " + std::to_string(limits_.max_list_entries) +
                       " entries; list a subdirectory to see more]\n";
            case wsfs::Truncation::Bytes:
                return "[listing stopped at " + format_size(limits_.max_list_bytes) +
                       " of response; list a subdirectory to see more]\n";
            case wsfs::Truncation::Depth:
                return "[directories " + std::to_string(limits_.max_list_depth) +
                       " levels down were listed but not entered; list one of them to see more]\n";
            case wsfs::Truncation::Changed:
                return "[listing stopped: a directory moved while it was listed (a run is changing the tree); "
                       "list again]\n";
        }
        return "";
    }
};

class DeleteFile final : public WorkspaceTool {
public:
    using WorkspaceTool::WorkspaceTool;
    const ToolDef& def() const override {
        static const ToolDef d{"delete_file", "Delete a workspace file",
                               "Deletes a file, symlink or directory tree under /workspace.",
                               workspace_schema({{"path", kPathSchema}}, {"path"}),
                               object_schema({{"path", {{"type", "string"}}}, {"deleted", {{"type", "boolean"}}}}, {"path", "deleted"}),
                               {false, true, true, false}};
        return d;
    }
    ToolResult call(const json& args, const CallContext& ctx) override {
        auto path = wsfs::normalize_relative(args["path"].get<std::string>());
        if (!path) return fail("delete_file", path.error());
        auto ws = workspace(ctx, args);
        if (!ws) return fail("delete_file", ws.error());
        if (Status st = wsfs::remove(ws->dir_fd(), *path); !st) return fail("delete_file", st.error());
        if (Status st = ws->commit(); !st) return fail("delete_file", st.error());
        return {"Deleted /workspace/" + *path, {{"path", *path}, {"deleted", true}}, false, {}};
    }
};

class ResetWorkspace final : public WorkspaceTool {
public:
    using WorkspaceTool::WorkspaceTool;
    const ToolDef& def() const override {
        static const ToolDef d{"reset_workspace", "Reset the workspace",
                               "Deletes every file in this session's /workspace.",
                               workspace_schema(json::object(), json::array()),
                               object_schema({{"reset", {{"type", "boolean"}}}}, {"reset"}),
                               {false, true, true, false}};
        return d;
    }
    ToolResult call(const json& args, const CallContext& ctx) override {
        auto ws = workspace(ctx, args);
        if (!ws) return fail("reset_workspace", ws.error());
        if (Status st = ws->workspace().reset(); !st) return fail("reset_workspace", st.error());
        if (Status st = ws->commit(); !st) return fail("reset_workspace", st.error());
        return {"The workspace is empty.", {{"reset", true}}, false, {}};
    }
};

class WorkspaceCreate final : public Tool {
public:
    explicit WorkspaceCreate(WorkspaceStore& store) : store_(store) {}
    const ToolDef& def() const override {
        static const ToolDef d{
            "workspace_create", "Create a workspace",
            "Creates an empty workspace and returns its handle. Pass the handle as `workspace` to run_code, "
            "run_command and the file tools to work in it from any session of the same principal, on any replica "
            "when the store is shared. It is removed by workspace_delete or after workspace.idle_ttl unused.",
            object_schema(json::object(), json::array()),
            object_schema({{"workspace", {{"type", "string"}}}, {"store", {{"type", "string"}, {"enum", {"local", "shared"}}}}},
                          {"workspace", "store"}),
            {false, false, false, false}};
        return d;
    }
    ToolResult call(const json&, const CallContext& ctx) override {
        auto handle = store_.create(principal_of(ctx));
        if (!handle) return ToolResult::error("workspace_create: " + handle.error().what());
        std::string store(choice_name(store_.kind()));
        return {"Created workspace " + *handle + " (" + store + " store)", {{"workspace", *handle}, {"store", store}}, false, {}};
    }

private:
    WorkspaceStore& store_;
};

class WorkspaceDelete final : public Tool {
public:
    explicit WorkspaceDelete(WorkspaceStore& store) : store_(store) {}
    const ToolDef& def() const override {
        static const ToolDef d{"workspace_delete", "Delete a workspace",
                               "Deletes a workspace made by workspace_create, with every file in it.",
                               object_schema({{"workspace", workspace_arg_schema()}}, {"workspace"}),
                               object_schema({{"workspace", {{"type", "string"}}}, {"deleted", {{"type", "boolean"}}}},
                                             {"workspace", "deleted"}),
                               {false, true, true, false}};
        return d;
    }
    ToolResult call(const json& args, const CallContext& ctx) override {
        std::string handle = args["workspace"];
        if (Status st = store_.remove(handle, principal_of(ctx)); !st)
            return ToolResult::error("workspace_delete: " + st.error().what());
        return {"Deleted workspace " + handle, {{"workspace", handle}, {"deleted", true}}, false, {}};
    }

private:
    WorkspaceStore& store_;
};

}  // namespace

void register_file_tools(Registry& registry, WorkspaceStore& workspaces, FileToolLimits limits) {
    registry.add(std::make_unique<WriteFile>(workspaces, limits));
    registry.add(std::make_unique<ReadFile>(workspaces, limits));
    registry.add(std::make_unique<ListFiles>(workspaces, limits));
    registry.add(std::make_unique<DeleteFile>(workspaces, limits));
    registry.add(std::make_unique<ResetWorkspace>(workspaces, limits));
    registry.add(std::make_unique<WorkspaceCreate>(workspaces));
    registry.add(std::make_unique<WorkspaceDelete>(workspaces));
}

}  // namespace kiln::tools
