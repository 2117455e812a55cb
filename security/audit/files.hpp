// The files of one chain and how to read them. The active file is `path`;
// rotation renames it to `path.1`, `path.2`, ... (higher is newer), so the
// chain in order is path.1, path.2, ..., path.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace kiln::audit {

// Rotated predecessors of `path`, oldest first.
std::vector<std::string> rotated_files(const std::string& path);
// Rotated predecessors then `path` itself, those that exist.
std::vector<std::string> chain_files(const std::string& path);
// FILES grouped into chains, for replicas that keep one chain each: files
// that differ only in a rotation suffix (path, path.1, path.2...) are one
// chain, ordered as rotation made them (path.1, path.2, ..., path). The
// chains come in the order their first file was given.
std::vector<std::vector<std::string>> group_chains(const std::vector<std::string>& files);

// Highest N among existing path.N (0 when none).
unsigned last_rotation_index(const std::string& path);

struct LogLine {
    const std::string* file;
    std::uint64_t line_no;  // 1-based within the file
    std::string text;       // without the newline
    bool torn;              // the file ends inside this line (no newline)
};

// Calls `fn` for every line of every file in order; stops early when `fn`
// returns false.
Status for_each_line(const std::vector<std::string>& files, const std::function<bool(const LogLine&)>& fn);

// One record of a merged view of several chains.
struct MergedRecord {
    std::string ts;       // RFC 3339 UTC with microseconds: sorts as text
    std::size_t chain = 0;  // index into the chains given
    std::uint64_t seq = 0;
    std::string text;     // the line as stored
};
// Every complete record of every chain, in time order (ties: chain, then
// seq). Within one chain the order stays the chain's own.
Result<std::vector<MergedRecord>> merge_chains(const std::vector<std::vector<std::string>>& chains);

// The end of a log file as the writer needs it after a crash.
struct Tail {
    std::uint64_t size = 0;           // bytes in the file
    std::uint64_t complete_size = 0;  // bytes up to and including the last newline
    std::string last_line;            // last complete line, without newline
};
Result<Tail> read_tail(int fd);

}  // namespace kiln::audit
