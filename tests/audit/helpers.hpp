// Shared fixtures for the audit tests: a temporary directory removed on
// scope exit, file helpers, a config pointing into it, and opening a log
// that must open.
#pragma once

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "security/audit/audit_log.hpp"

namespace kiln::audit::test {

class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "kiln-audit-test-XXXXXX").string();
        path_ = ::mkdtemp(tmpl.data()) ? tmpl : std::string();
    }
    ~TempDir() {
        std::error_code ec;
        if (!path_.empty()) std::filesystem::remove_all(path_, ec);
    }
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

inline void write_file(const std::string& path, const std::string& text, mode_t mode = 0600) {
    { std::ofstream(path, std::ios::binary | std::ios::trunc) << text; }
    ::chmod(path.c_str(), mode);
}

inline std::vector<std::string> read_lines(const std::string& path) {
    std::vector<std::string> lines;
    std::istringstream in(read_file(path));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

inline void write_lines(const std::string& path, const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    write_file(path, text);
}

inline AuditConfig config_in(const TempDir& dir, const std::string& fsync = "always") {
    AuditConfig cfg;
    cfg.path = dir.file("log/audit.jsonl");
    cfg.fsync = fsync;
    return cfg;
}

inline std::unique_ptr<AuditLog> open_ok(const AuditConfig& cfg) {
    auto log = AuditLog::open(cfg);
    REQUIRE_MESSAGE(log.ok(), (log.ok() ? "" : log.error().what()));
    return std::move(*log);
}

}  // namespace kiln::audit::test
