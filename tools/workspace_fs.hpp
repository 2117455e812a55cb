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
};
// Lists a directory (recursively on request) without following symlinks.
// Stops at max_entries and says so.
Result<std::vector<Entry>> list(int root_fd, const std::string& path, bool recursive, std::size_t max_entries,
                                bool* truncated);

// Removes a file, symlink or directory tree. The workspace root itself
// cannot be removed (use reset).
Status remove(int root_fd, const std::string& path);
// Empties a directory (the workspace root on reset).
Status remove_contents(int dir_fd);

}  // namespace kiln::tools::wsfs
