#include "security/audit/files.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <tuple>

#include <nlohmann/json.hpp>

namespace kiln::audit {
namespace fs = std::filesystem;

namespace {

// N when `name` is `base` + "." + digits.
std::optional<unsigned> rotation_index(const std::string& name, const std::string& base) {
    if (name.size() <= base.size() + 1 || name.compare(0, base.size(), base) != 0 || name[base.size()] != '.')
        return std::nullopt;
    std::string digits = name.substr(base.size() + 1);
    if (digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    return static_cast<unsigned>(std::stoul(digits));
}

std::vector<std::pair<unsigned, std::string>> rotated_with_index(const std::string& path) {
    std::vector<std::pair<unsigned, std::string>> found;
    fs::path p(path);
    fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (auto n = rotation_index(entry.path().filename().string(), p.filename().string()))
            found.emplace_back(*n, (dir / entry.path().filename()).string());
    }
    std::sort(found.begin(), found.end());
    return found;
}

}  // namespace

std::vector<std::string> rotated_files(const std::string& path) {
    std::vector<std::string> out;
    for (auto& [n, file] : rotated_with_index(path)) out.push_back(file);
    return out;
}

std::vector<std::string> chain_files(const std::string& path) {
    auto files = rotated_files(path);
    std::error_code ec;
    if (fs::exists(path, ec)) files.push_back(path);
    return files;
}

std::vector<std::vector<std::string>> group_chains(const std::vector<std::string>& files) {
    std::vector<std::string> bases;
    std::vector<std::vector<std::pair<unsigned, std::string>>> members;
    for (const auto& file : files) {
        std::string base = file;
        unsigned order = ~0u;  // the active file comes last
        if (auto dot = file.rfind('.'); dot != std::string::npos)
            if (auto n = rotation_index(file, file.substr(0, dot))) {
                base = file.substr(0, dot);
                order = *n;
            }
        auto at = std::find(bases.begin(), bases.end(), base);
        if (at == bases.end()) {
            bases.push_back(base);
            members.emplace_back();
            at = bases.end() - 1;
        }
        members[static_cast<std::size_t>(at - bases.begin())].emplace_back(order, file);
    }
    std::vector<std::vector<std::string>> chains;
    for (auto& m : members) {
        std::stable_sort(m.begin(), m.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        chains.emplace_back();
        for (auto& [n, file] : m) chains.back().push_back(file);
    }
    return chains;
}

Result<std::vector<MergedRecord>> merge_chains(const std::vector<std::vector<std::string>>& chains) {
    std::vector<MergedRecord> out;
    for (std::size_t c = 0; c < chains.size(); ++c) {
        Status st = for_each_line(chains[c], [&](const LogLine& line) {
            auto record = nlohmann::json::parse(line.text, nullptr, false);
            if (line.torn || !record.is_object() || !record["ts"].is_string() || !record["seq"].is_number_unsigned())
                return true;
            out.push_back({record["ts"].get<std::string>(), c, record["seq"].get<std::uint64_t>(), line.text});
            return true;
        });
        if (!st) return st.error();
    }
    std::stable_sort(out.begin(), out.end(), [](const MergedRecord& a, const MergedRecord& b) {
        return std::tie(a.ts, a.chain, a.seq) < std::tie(b.ts, b.chain, b.seq);
    });
    return out;
}

unsigned last_rotation_index(const std::string& path) {
    auto found = rotated_with_index(path);
    return found.empty() ? 0 : found.back().first;
}

Status for_each_line(const std::vector<std::string>& files, const std::function<bool(const LogLine&)>& fn) {
    for (const auto& file : files) {
        std::ifstream in(file, std::ios::binary);
        if (!in) return sys_error("open audit log " + file);
        LogLine line{&file, 0, {}, false};
        while (std::getline(in, line.text)) {
            ++line.line_no;
            // getline sets eof only when the last line had no newline.
            line.torn = in.eof();
            if (!fn(line)) return {};
        }
        if (in.bad()) return sys_error("read audit log " + file);
    }
    return {};
}

Result<Tail> read_tail(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return sys_error("stat audit log");
    Tail tail;
    tail.size = static_cast<std::uint64_t>(st.st_size);
    // Read backwards until the buffer holds the last newline and the one
    // before it (or the start of the file): that brackets the last line.
    std::string buf;
    std::uint64_t start = tail.size;
    constexpr std::uint64_t kChunk = 64 * 1024;
    std::size_t last_nl = std::string::npos;
    while (start > 0) {
        std::uint64_t n = std::min(kChunk, start);
        start -= n;
        std::string chunk(n, '\0');
        std::uint64_t got = 0;
        while (got < n) {
            ssize_t r = ::pread(fd, chunk.data() + got, n - got, static_cast<off_t>(start + got));
            if (r < 0) return sys_error("read audit log tail");
            if (r == 0) return make_error("read audit log tail", "the file shrank while being read");
            got += static_cast<std::uint64_t>(r);
        }
        buf.insert(0, chunk);
        last_nl = buf.rfind('\n');
        if (last_nl != std::string::npos && last_nl > 0 && buf.rfind('\n', last_nl - 1) != std::string::npos) break;
    }
    if (last_nl == std::string::npos) return tail;  // no complete line at all
    tail.complete_size = start + last_nl + 1;
    std::size_t prev_nl = last_nl > 0 ? buf.rfind('\n', last_nl - 1) : std::string::npos;
    std::size_t line_start = prev_nl == std::string::npos ? 0 : prev_nl + 1;
    tail.last_line = buf.substr(line_start, last_nl - line_start);
    return tail;
}

}  // namespace kiln::audit
