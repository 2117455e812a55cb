#include "tools/rich_content.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "common/text.hpp"
#include "common/units.hpp"

namespace kiln::tools::rich {

using nlohmann::json;

namespace {

constexpr std::string_view kPngSignature = "\x89PNG\r\n\x1a\n";

std::uint32_t big_endian_u32(std::string_view b, std::size_t at) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) << 24 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 3]));
}

std::string plural(std::size_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string base_name(std::string_view path) {
    auto slash = path.rfind('/');
    return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

bool is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::optional<PngSize> png_size(std::string_view bytes) {
    // Signature, then the first chunk: length 13, type IHDR, width, height.
    if (bytes.size() < 24 || bytes.substr(0, 8) != kPngSignature) return std::nullopt;
    if (big_endian_u32(bytes, 8) != 13 || bytes.substr(12, 4) != "IHDR") return std::nullopt;
    PngSize size{big_endian_u32(bytes, 16), big_endian_u32(bytes, 20)};
    if (size.width == 0 || size.height == 0) return std::nullopt;
    return size;
}

json image_item(std::string_view png) {
    return {{"type", "image"}, {"data", base64_encode(png)}, {"mimeType", "image/png"}};
}

namespace {

// One note per reason, whatever a program left: the first few names, then a count.
std::string some_names(const std::vector<std::string>& names) {
    constexpr std::size_t kShown = 3;
    std::string out;
    for (std::size_t i = 0; i < names.size() && i < kShown; ++i) out += (i ? ", " : "") + names[i];
    if (names.size() > kShown) out += " and " + std::to_string(names.size() - kShown) + " more";
    return out;
}

}  // namespace

void add_images(Content& out, const std::vector<Figure>& figures, const Limits& limits) {
    std::size_t taken = 0, past_count = 0;
    std::vector<std::string> too_large, not_png;
    for (const auto& f : figures) {
        if (taken >= limits.max_images) {
            ++past_count;
        } else if (f.size > limits.max_image_bytes) {
            too_large.push_back(f.name + " (" + format_size(f.size) + ")");
        } else if (!png_size(f.bytes)) {
            not_png.push_back(f.name);
        } else {
            out.items.push_back(image_item(f.bytes));
            ++taken;
        }
    }
    if (!too_large.empty())
        out.notes.push_back(plural(too_large.size(), "figure", "figures") + " over " + format_size(limits.max_image_bytes) +
                            " per image (workspace.max_image_size) dropped: " + some_names(too_large) +
                            "; save smaller (lower dpi or figsize) or to a file in /workspace");
    if (!not_png.empty())
        out.notes.push_back(plural(not_png.size(), "figure that is not a PNG image", "figures that are not PNG images") +
                            " dropped: " + some_names(not_png));
    if (past_count > 0)
        out.notes.push_back(plural(past_count, "more figure", "more figures") + " dropped: at most " +
                            plural(limits.max_images, "image", "images") +
                            " per result (workspace.max_images); close figures you do not need (plt.close) or save them to /workspace");
}

namespace {
constexpr const char* kInternalDir = ".kiln";
// Entries of a figure directory looked at, whatever a program put there.
constexpr std::size_t kMaxFigureEntries = 1000;
}  // namespace

Result<FigureDir> FigureDir::create(int workspace_fd, std::uint64_t run, wsfs::Owner owner) {
    std::string path = std::string(kInternalDir) + "/figures-" + std::to_string(run);
    if (Status st = wsfs::make_directories(workspace_fd, path, owner); !st)
        return Error(st.error()).wrap("make the figure directory /workspace/" + path);
    return FigureDir(workspace_fd, std::move(path));
}

FigureDir::FigureDir(FigureDir&& other) noexcept : fd_(other.fd_), path_(std::move(other.path_)) { other.path_.clear(); }

FigureDir::~FigureDir() {
    if (path_.empty()) return;
    (void)wsfs::remove(fd_, path_);
    // .kiln itself goes once no other run of the session uses it.
    (void)::unlinkat(fd_, kInternalDir, AT_REMOVEDIR);
}

std::vector<Figure> FigureDir::take(const Limits& limits) const {
    std::vector<Figure> out;
    wsfs::ListLimits walk{kMaxFigureEntries, kMaxFigureEntries * (wsfs::kListEntryOverhead + 256), 1};
    auto listing = wsfs::list(fd_, path_, false, walk);
    if (!listing) return out;
    std::vector<wsfs::Entry> pngs;
    for (auto& e : listing->entries)
        if (e.path.size() > 4 && e.path.ends_with(".png")) pngs.push_back(std::move(e));
    std::sort(pngs.begin(), pngs.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
    std::size_t usable = 0;
    for (const auto& e : pngs) {
        Figure f{base_name(e.path), {}, e.size};
        // Past max_images usable ones, the rest are only counted; one over
        // the size bound is known from the listing without reading it.
        if (usable < limits.max_images && e.size <= limits.max_image_bytes) {
            auto data = wsfs::read_file(fd_, e.path, limits.max_image_bytes + 1);
            if (!data) continue;  // removed or replaced meanwhile: not a figure
            f.bytes = std::move(data->bytes);
            f.size = data->size;
            if (f.size <= limits.max_image_bytes && png_size(f.bytes)) ++usable;
        }
        out.push_back(std::move(f));
    }
    return out;
}

Result<Snapshot> snapshot(int workspace_fd, const Limits& limits) {
    // The walk's byte bound is not the point here; its entry count is.
    wsfs::ListLimits walk{limits.max_snapshot_entries, limits.max_snapshot_entries * (wsfs::kListEntryOverhead + 4096),
                          wsfs::kMaxListDepth};
    auto listing = wsfs::list(workspace_fd, ".", true, walk);
    if (!listing) return Error(listing.error()).wrap("snapshot the workspace");
    Snapshot out;
    out.truncated = listing->truncated;
    for (auto& e : listing->entries)
        if (e.type == "file") out.files.emplace(std::move(e.path), FileState{e.size, e.mtime_ns, e.inode});
    return out;
}

bool is_hidden(std::string_view path) {
    std::size_t start = 0;
    while (start < path.size()) {
        if (path[start] == '.') return true;
        auto slash = path.find('/', start);
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    return false;
}

std::vector<Change> changed_files(const Snapshot& before, const Snapshot& after) {
    std::vector<Change> out;
    for (const auto& [path, state] : after.files) {
        if (is_hidden(path)) continue;
        auto was = before.files.find(path);
        if (was == before.files.end()) out.push_back({path, state, true});
        else if (!(was->second == state)) out.push_back({path, state, false});
    }
    return out;
}

std::string workspace_uri(std::string_view path) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out(kWorkspaceUriPrefix);
    for (unsigned char c : path) {
        if (is_unreserved(c) || c == '/') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

std::optional<std::string> workspace_path(std::string_view uri) {
    if (uri.substr(0, kWorkspaceUriPrefix.size()) != kWorkspaceUriPrefix) return std::nullopt;
    uri.remove_prefix(kWorkspaceUriPrefix.size());
    std::string out;
    for (std::size_t i = 0; i < uri.size(); ++i) {
        if (uri[i] != '%') {
            out += uri[i];
            continue;
        }
        if (i + 2 >= uri.size()) return std::nullopt;
        int hi = hex_value(uri[i + 1]), lo = hex_value(uri[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

std::string mime_type(std::string_view path) {
    static const std::map<std::string, std::string, std::less<>> kByExtension = {
        {"csv", "text/csv"},          {"tsv", "text/tab-separated-values"}, {"txt", "text/plain"},
        {"log", "text/plain"},        {"md", "text/markdown"},              {"json", "application/json"},
        {"jsonl", "application/jsonl"}, {"xml", "application/xml"},         {"yaml", "application/yaml"},
        {"yml", "application/yaml"},  {"html", "text/html"},                {"svg", "image/svg+xml"},
        {"png", "image/png"},         {"jpg", "image/jpeg"},                {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},         {"webp", "image/webp"},               {"pdf", "application/pdf"},
        {"py", "text/x-python"},      {"js", "text/javascript"},            {"sh", "text/x-shellscript"},
        {"parquet", "application/vnd.apache.parquet"},                      {"zip", "application/zip"},
        {"gz", "application/gzip"},   {"npy", "application/octet-stream"},
    };
    std::string name = base_name(path);
    auto dot = name.rfind('.');
    if (dot == std::string::npos || dot == 0) return "application/octet-stream";
    std::string ext = name.substr(dot + 1);
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto it = kByExtension.find(ext);
    return it == kByExtension.end() ? "application/octet-stream" : it->second;
}

json resource_link(const Change& change) {
    return {{"type", "resource_link"},
            {"uri", workspace_uri(change.path)},
            {"name", change.path},
            {"description", std::string(change.created ? "created" : "changed") + " by this call: /workspace/" + change.path},
            {"mimeType", mime_type(change.path)},
            {"size", change.state.size}};
}

void add_file_links(Content& out, const std::vector<Change>& changes, wsfs::Truncation walk, const Limits& limits) {
    std::size_t n = std::min(changes.size(), limits.max_links);
    for (std::size_t i = 0; i < n; ++i) out.items.push_back(resource_link(changes[i]));
    if (changes.size() > n)
        out.notes.push_back(plural(changes.size() - n, "more created or changed file", "more created or changed files") +
                            " not linked: at most " + std::to_string(limits.max_links) +
                            " links per result (workspace.max_file_links); list_files shows them all");
    if (walk != wsfs::Truncation::None)
        out.notes.push_back(std::string("the workspace was only partly compared before and after the run (") +
                            wsfs::to_string(walk) + ": more than " + std::to_string(limits.max_snapshot_entries) +
                            " entries, or a tree that moved); files past that point are not linked");
}

Result<json> read_workspace_resource(int workspace_fd, const std::string& uri, std::uint64_t max_bytes) {
    auto raw = workspace_path(uri);
    if (!raw) return make_error("resources/read", "'" + uri + "' is not a valid kiln://workspace/<path> URI (bad % escape)");
    auto path = wsfs::normalize_relative(*raw);
    if (!path) return Error(path.error()).wrap("resources/read " + uri);
    auto data = wsfs::read_file(workspace_fd, *path, max_bytes);
    if (!data) return Error(data.error()).wrap("resources/read " + uri);
    if (data->truncated) {
        Error e = make_error("resources/read " + uri,
                             "/workspace/" + *path + " is " + format_size(data->size) + "; resources/read serves at most " +
                                 format_size(max_bytes) + " (read part of it with read_file and max_bytes)");
        e.err = EFBIG;
        return e;
    }
    json item = {{"uri", workspace_uri(*path)}, {"mimeType", mime_type(*path)}};
    if (is_valid_utf8(data->bytes)) item["text"] = std::move(data->bytes);
    else item["blob"] = base64_encode(data->bytes);
    return json{{"contents", json::array({item})}};
}

}  // namespace kiln::tools::rich
