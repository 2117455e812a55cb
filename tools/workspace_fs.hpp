// File operations confined to one workspace directory.
//
// Every path an agent gives is relative to /workspace. Confinement is done by
// the kernel, not by string checks: each open goes through openat2() with
// RESOLVE_BENEATH, so "..", absolute symlinks and symlinks that climb out of
// the workspace fail with EXDEV no matter what code in the jail planted
// there. The lexical check in normalize_relative() only exists to give a
// clear error for the obvious cases before the kernel sees them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace kiln::tools::wsfs {

// "a/./b//c" -> "a/b/c"; refuses "", absolute paths, ".." and NUL bytes.
// "." and "" (when allow_root) mean the workspace itself.
Result<std::string> normalize_relative(std::string_view path, bool allow_root = false);

Result<UniqueFd> open_beneath(int root_fd, const std::string& path, int flags, mode_t mode = 0);

struct Owner {
    uid_t uid = static_cast<uid_t>(-1);  // -1: leave as created
    gid_t gid = static_cast<gid_t>(-1);
};

// Creates the directory and its missing parents (owned by `owner`); one
// that exists already is fine.
Status make_directories(int root_fd, const std::string& path, Owner owner);

// Creates missing parent directories, then writes the file (truncating).
// Refuses to write through anything but a regular file (FIFOs, devices).
Status write_file(int root_fd, const std::string& path, std::string_view data, Owner owner);

struct FileData {
    std::string bytes;
    std::uint64_t size = 0;  // full size of the file
    bool truncated = false;
};
Result<FileData> read_file(int root_fd, const std::string& path, std::uint64_t max_bytes);

struct Entry {
    std::string path;  // relative to the workspace
    std::string type;  // "file", "directory", "symlink", "other"
    std::uint64_t size = 0;
    // What tells a changed file from an unchanged one (rich_content.hpp):
    // a rewrite moves the mtime, a replacement by rename the inode.
    std::int64_t mtime_ns = 0;
    std::uint64_t inode = 0;
};

// A run can build a directory chain 100,000 levels deep in two seconds, with
// names of 255 bytes, so a listing's paths grow with the square of its
// depth. Every listing is bounded in entries, in bytes and in depth.
inline constexpr std::size_t kMaxListDepth = 64;
// Each entry costs its path plus this much for its type and size.
inline constexpr std::size_t kListEntryOverhead = 48;

struct ListLimits {
    std::size_t max_entries = 10'000;
    std::size_t max_bytes = 512 << 10;  // sum of path sizes + kListEntryOverhead each
    std::size_t max_depth = kMaxListDepth;  // levels below the listed directory
};

// Why a listing is incomplete.
enum class Truncation {
    None,
    Entries,  // max_entries reached
    Bytes,    // max_bytes reached
    Depth,    // directories at max_depth were listed but not entered
    Changed,  // a directory moved while it was walked (a run is changing the tree)
};
const char* to_string(Truncation t);

struct Listing {
    std::vector<Entry> entries;
    Truncation truncated = Truncation::None;
};

// Lists a directory (recursively on request) without following symlinks or
// crossing into another filesystem. The walk holds two descriptors at most
// and no native recursion, whatever the depth.
Result<Listing> list(int root_fd, const std::string& path, bool recursive, const ListLimits& limits);

// Removes a file, symlink or directory tree. The workspace root itself
// cannot be removed (use reset).
Status remove(int root_fd, const std::string& path);
// Empties a directory (the workspace root on reset) of any depth with two
// descriptors at most and no native recursion. It never climbs above
// dir_fd: a directory moved while the walk is inside it is noticed on the
// way back up and the walk starts again from dir_fd.
Status remove_contents(int dir_fd);

}  // namespace kiln::tools::wsfs
