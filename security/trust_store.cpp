#include "security/trust_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>

#include "common/hash.hpp"
#include "common/unique_fd.hpp"

namespace kiln::security {
namespace {

using nlohmann::json;

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

json to_json(const TrustEntry& e) {
    json j = {{"sha256", e.sha256}, {"note", e.note}, {"added", e.added}};
    if (e.expires) j["expires"] = *e.expires;
    if (e.uses_left) j["uses_left"] = *e.uses_left;
    return j;
}

TrustEntry from_json(const json& j) {
    TrustEntry e;
    e.sha256 = j.at("sha256").get<std::string>();
    e.note = j.value("note", "");
    e.added = j.value("added", std::int64_t{0});
    if (j.contains("expires")) e.expires = j["expires"].get<std::int64_t>();
    if (j.contains("uses_left")) e.uses_left = j["uses_left"].get<std::uint32_t>();
    return e;
}

bool live(const TrustEntry& e, std::int64_t now) {
    return (!e.expires || *e.expires > now) && (!e.uses_left || *e.uses_left > 0);
}

// Holds an exclusive flock on "<path>.lock" for one read-modify-write.
class FileLock {
public:
    static Result<FileLock> acquire(const std::string& path) {
        std::string dir = path.substr(0, path.rfind('/'));
        if (!dir.empty() && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return sys_error("mkdir " + dir);
        int fd = ::open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) return sys_error("open " + path + ".lock");
        UniqueFd guard(fd);
        if (::flock(fd, LOCK_EX) != 0) return sys_error("lock " + path);
        return FileLock(std::move(guard));
    }

private:
    explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;
};

Result<std::vector<TrustEntry>> load(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return std::vector<TrustEntry>{};
        return sys_error("open trust store " + path);
    }
    UniqueFd guard(fd);
    std::string text;
    char buf[8192];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    if (n < 0) return sys_error("read trust store " + path);
    try {
        json doc = json::parse(text);
        std::vector<TrustEntry> out;
        for (const auto& e : doc.at("entries")) out.push_back(from_json(e));
        return out;
    } catch (const json::exception& e) {
        return make_error("parse trust store " + path,
                          std::string(e.what()) + "; fix or delete the file (it only holds approvals)");
    }
}

Status save(const std::string& path, const std::vector<TrustEntry>& entries) {
    json doc = {{"version", 1}, {"entries", json::array()}};
    for (const auto& e : entries) doc["entries"].push_back(to_json(e));
    std::string text = doc.dump(2) + "\n";
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return sys_error("create " + tmp);
    UniqueFd guard(fd);
    if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) || ::fsync(fd) != 0) {
        Error e = sys_error("write " + tmp);
        ::unlink(tmp.c_str());
        return e;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) return sys_error("rename " + tmp + " to " + path);
    return {};
}

}  // namespace

std::string normalize_code(std::string_view code) {
    std::string out;
    std::string line;
    auto flush_line = [&] {
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) line.pop_back();
        out += line;
        out += '\n';
        line.clear();
    };
    for (char c : code) {
        if (c == '\n') flush_line();
        else line.push_back(c);
    }
    if (!line.empty()) flush_line();
    while (out.size() >= 2 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n') out.pop_back();
    if (out == "\n") out.clear();
    return out;
}

std::string code_fingerprint(std::string_view code) { return sha256_hex(normalize_code(code)); }

TrustStore::TrustStore(std::string path) : path_(std::move(path)) {}

Result<std::vector<TrustEntry>> TrustStore::list() const { return load(path_); }

Status TrustStore::add(const TrustEntry& entry) {
    if (entry.sha256.size() != 64 ||
        !std::all_of(entry.sha256.begin(), entry.sha256.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }))
        return make_error("trust add", "'" + entry.sha256 + "' is not a SHA-256 (64 hex digits)");
    auto lock = FileLock::acquire(path_);
    if (!lock) return lock.error();
    auto entries = load(path_);
    if (!entries) return entries.error();
    std::erase_if(*entries, [&](const TrustEntry& e) { return e.sha256 == entry.sha256; });
    TrustEntry copy = entry;
    if (copy.added == 0) copy.added = now_seconds();
    entries->push_back(copy);
    return save(path_, *entries);
}

Result<bool> TrustStore::remove(const std::string& prefix) {
    if (prefix.size() < 8) return make_error("trust remove", "give at least 8 hex digits of the hash");
    auto lock = FileLock::acquire(path_);
    if (!lock) return lock.error();
    auto entries = load(path_);
    if (!entries) return entries.error();
    auto removed = std::erase_if(*entries, [&](const TrustEntry& e) { return e.sha256.rfind(prefix, 0) == 0; });
    if (removed == 0) return false;
    if (Status st = save(path_, *entries); !st) return st.error();
    return true;
}

Result<bool> TrustStore::consume(const std::string& sha256) {
    auto lock = FileLock::acquire(path_);
    if (!lock) return lock.error();
    auto entries = load(path_);
    if (!entries) return entries.error();
    const auto now = now_seconds();
    bool trusted = false, changed = false;
    for (auto& e : *entries) {
        if (e.sha256 != sha256 || !live(e, now)) continue;
        trusted = true;
        if (e.uses_left) {
            --*e.uses_left;
            changed = true;
        }
    }
    auto before = entries->size();
    std::erase_if(*entries, [&](const TrustEntry& e) { return !live(e, now); });
    changed = changed || entries->size() != before;
    if (changed)
        if (Status st = save(path_, *entries); !st) return st.error();
    return trusted;
}

}  // namespace kiln::security
