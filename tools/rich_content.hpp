// Rich MCP content beside a run's text: figures as `image` items and the
// files a run created or changed in /workspace as `resource_link` items
// (kiln://workspace/<path>, served by resources/read). The one place these
// items are built, for one-shot run_code and for the persistent interpreter.
//
// Everything is bounded, and nothing is dropped silently: what does not fit
// becomes a note the caller shows in the result's text.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "tools/workspace_fs.hpp"

namespace kiln::tools::rich {

struct Limits {
    std::size_t max_images = 8;                   // image items per result
    std::uint64_t max_image_bytes = 4ull << 20;   // one PNG's size
    std::size_t max_links = 50;                   // resource_link items per result
    std::size_t max_snapshot_entries = 10'000;    // the workspace walk before and after a run
};

// The items for a result's content array, after its text, and the notes on
// what was left out.
struct Content {
    std::vector<nlohmann::json> items;
    std::vector<std::string> notes;
};

struct PngSize {
    std::uint32_t width = 0, height = 0;
};
// The pixel size from the IHDR chunk; nothing when the bytes are not a PNG.
std::optional<PngSize> png_size(std::string_view bytes);

// {"type":"image","data":<base64>,"mimeType":"image/png"}
nlohmann::json image_item(std::string_view png);

// A figure a run left for the server: its name (for notes), its bytes (at
// most max_image_bytes + 1 of them were read) and its full size.
struct Figure {
    std::string name;
    std::string bytes;
    std::uint64_t size = 0;
};
// The figures as image items in order, up to the limits. Those too large,
// not PNGs, or past max_images are dropped with one note per reason (a few
// names, then a count: a program leaving 1000 files makes three notes).
void add_images(Content& out, const std::vector<Figure>& figures, const Limits& limits);

// A directory of the workspace that receives one run's figures
// (figure_hook.hpp), removed with whatever is in it when this goes. The
// workspace must outlive it.
class FigureDir {
public:
    // Makes <workspace>/.kiln/figures-<run> owned by `owner` (the jail's user).
    static Result<FigureDir> create(int workspace_fd, std::uint64_t run, wsfs::Owner owner);
    FigureDir(FigureDir&& other) noexcept;
    FigureDir& operator=(FigureDir&&) = delete;
    ~FigureDir();

    const std::string& path() const { return path_; }  // relative to /workspace
    // The *.png files in name order, read until max_images usable ones
    // (PNGs within max_image_bytes) are found; the rest come unread, to be
    // counted in add_images' note.
    std::vector<Figure> take(const Limits& limits) const;

private:
    FigureDir(int workspace_fd, std::string path) : fd_(workspace_fd), path_(std::move(path)) {}
    int fd_;
    std::string path_;
};

// A workspace's regular files with what tells a change.
struct FileState {
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::uint64_t inode = 0;
    bool operator==(const FileState&) const = default;
};
struct Snapshot {
    std::map<std::string, FileState> files;  // path relative to /workspace
    wsfs::Truncation truncated = wsfs::Truncation::None;
};
// A bounded walk of the workspace (wsfs::list: no symlink followed).
Result<Snapshot> snapshot(int workspace_fd, const Limits& limits);

// Hidden and internal files (a path with a component starting with '.',
// such as .kiln/ or .cache/) are never linked.
bool is_hidden(std::string_view path);

struct Change {
    std::string path;
    FileState state;
    bool created = false;  // false: it existed before and changed
};
// Regular files in `after` that are new or differ from `before`, hidden
// ones left out, in path order. Deleted files are not changes to link.
std::vector<Change> changed_files(const Snapshot& before, const Snapshot& after);

// "kiln://workspace/" + the path, percent-encoded except '/' and RFC 3986's
// unreserved characters; workspace_path() is its inverse (nothing when the
// URI is not a workspace URI or its escapes are malformed).
inline constexpr std::string_view kWorkspaceUriPrefix = "kiln://workspace/";
std::string workspace_uri(std::string_view path);
std::optional<std::string> workspace_path(std::string_view uri);

// By extension; application/octet-stream when unknown.
std::string mime_type(std::string_view path);

// {"type":"resource_link","uri":...,"name":...,"mimeType":...,"size":...}
nlohmann::json resource_link(const Change& change);
// Links for the changes, up to max_links; a note says how many were cut,
// and one says when a walk was cut short (files past it are not linked).
void add_file_links(Content& out, const std::vector<Change>& changes, wsfs::Truncation walk, const Limits& limits);

// The resources/read result for a kiln://workspace/<path> URI: text as
// `text`, anything not UTF-8 as `blob` (base64). Confined to the workspace
// like the file tools; a file over max_bytes is refused with the limit.
Result<nlohmann::json> read_workspace_resource(int workspace_fd, const std::string& uri, std::uint64_t max_bytes);

}  // namespace kiln::tools::rich
