#include "tests/sandbox/harness.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace kiln::sandbox::test {

bool must_work() {
    const char* v = std::getenv("KILN_MUST_WORK");
    return v && std::string(v) == "1";
}

bool is_root() { return ::geteuid() == 0; }

std::string seccomp_filters_line(int jail_filters) {
    std::ifstream in("/proc/self/status");
    int outer = 0;
    for (std::string line; std::getline(in, line);)
        if (line.rfind("Seccomp_filters:", 0) == 0) outer = std::stoi(line.substr(line.find('\t') + 1));
    return "Seccomp_filters:\t" + std::to_string(outer + jail_filters) + "\n";
}

namespace {
std::map<std::string, std::string>& skipped_cases() {
    static std::map<std::string, std::string> cases;
    return cases;
}

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

bool offers(const std::string& controllers_file, const std::vector<std::string>& wanted) {
    std::istringstream in(read_all(controllers_file));
    std::set<std::string> have;
    for (std::string w; in >> w;) have.insert(w);
    for (const auto& w : wanted)
        if (!have.count(w)) return false;
    return true;
}
}  // namespace

bool not_applicable(const char* name, bool applies, const char* reason) {
    if (!applies) skipped_cases()[name] = reason;
    return !applies;
}

const char* skip_reason(const std::string& name) {
    auto it = skipped_cases().find(name);
    return it == skipped_cases().end() ? nullptr : it->second.c_str();
}

bool has_cgroup_v1_controllers() {
    std::istringstream mounts(read_all("/proc/self/mounts"));
    bool memory = false, pids = false;
    for (std::string line; std::getline(mounts, line);) {
        std::istringstream f(line);
        std::string dev, dir, type, opts;
        f >> dev >> dir >> type >> opts;
        if (type != "cgroup") continue;
        opts = "," + opts + ",";
        memory = memory || opts.find(",memory,") != std::string::npos;
        pids = pids || opts.find(",pids,") != std::string::npos;
    }
    return memory && pids;
}

bool has_cgroup_v2_controllers() {
    std::istringstream mounts(read_all("/proc/self/mounts"));
    for (std::string line; std::getline(mounts, line);) {
        std::istringstream f(line);
        std::string dev, dir, type;
        f >> dev >> dir >> type;
        if (type == "cgroup2" && offers(dir + "/cgroup.controllers", {"memory", "pids"})) return true;
    }
    return false;
}

Runtime& runtime() {
    static std::unique_ptr<Runtime> rt = [] {
        auto made = make_native_runtime({});
        if (!made) {
            std::fprintf(stderr, "native runtime unavailable: %s\n", made.error().what().c_str());
            std::abort();
        }
        return std::move(*made);
    }();
    return *rt;
}

std::string probe_path() { return KILN_PROBE_PATH; }
std::string kiln_path() { return KILN_BIN_PATH; }

bool on_image() { return std::getenv("KILN_TEST_IMAGE_ROOT") != nullptr; }

Output sh(const std::string& cmd) {
    Output o;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    std::array<char, 4096> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) o.out.append(buf.data(), n);
    int st = ::pclose(p);
    o.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return o;
}

SandboxSpec probe_spec(std::vector<std::string> args) {
    SandboxSpec spec;
    spec.argv = {kProbeInJail};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.mounts.push_back({probe_path(), kProbeInJail, false});
    spec.limits.timeout = std::chrono::milliseconds(20'000);
    // run_on_image.sh: the containment cases again with an imported image's tree as the root.
    if (const char* root = std::getenv("KILN_TEST_IMAGE_ROOT")) spec.rootfs = root;
    return spec;
}

ExecResult run_ok(const SandboxSpec& spec, const RunHooks& hooks) {
    auto r = runtime().run(spec, hooks);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error().what()));
    return std::move(*r);
}

ExecResult run_probe(const SandboxSpec& spec, const RunHooks& hooks) {
    ExecResult r = run_ok(spec, hooks);
    REQUIRE_MESSAGE((r.exit_code == 0 && !r.signal), spec.argv.front() << " did not exit 0 (exit "
                                                       << (r.exit_code ? std::to_string(*r.exit_code) : "none") << ", signal "
                                                       << (r.signal ? std::to_string(*r.signal) : "none")
                                                       << "); stderr: " << r.stderr_data);
    return r;
}

const std::string& Report::operator[](const std::string& key) const {
    auto it = values_.find(key);
    if (it == values_.end()) FAIL("the report has no '" << key << "'");
    return it->second;
}

Report parse(const std::string& text) {
    Report out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        auto sp = line.find(' ');
        if (sp == std::string::npos) continue;
        out.values_[line.substr(0, sp)] = line.substr(sp + 1);
    }
    return out;
}

std::vector<std::string> values_of(const std::string& text, const std::string& key) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key + " ", 0) == 0) out.push_back(line.substr(key.size() + 1));
    return out;
}

namespace {

std::size_t count_mounts() {
    std::ifstream in("/proc/self/mountinfo");
    std::size_t n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
}

bool process_named(const std::string& name) {
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        std::string pid = entry.path().filename();
        if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream comm(entry.path() / "comm");
        std::string c;
        if (std::getline(comm, c) && c == name) return true;
    }
    return false;
}

}  // namespace

std::size_t count_descendants(int root) {
    std::map<int, int> parent;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        std::string pid = entry.path().filename();
        if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream stat(entry.path() / "stat");
        std::string text;
        std::getline(stat, text);
        auto close = text.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(text.substr(close + 2));
        char state;
        int ppid = 0;
        rest >> state >> ppid;
        parent[std::stoi(pid)] = ppid;
    }
    std::size_t n = 0;
    for (const auto& [pid, ppid] : parent) {
        int p = ppid;
        for (int depth = 0; p > 1 && depth < 64; ++depth) {
            if (p == root) {
                ++n;
                break;
            }
            auto it = parent.find(p);
            p = it == parent.end() ? 0 : it->second;
        }
    }
    return n;
}

// Run directories under this process's cgroup subtrees, v1 and v2.
std::vector<std::string> run_cgroup_dirs() {
    std::vector<std::string> found;
    std::string me = std::to_string(::getpid());
    std::error_code ec;
    for (const auto& ctrl : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
        for (auto it = std::filesystem::recursive_directory_iterator(ctrl.path(), ec);
             it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
            if (ec) break;
            if (!it->is_directory(ec)) continue;
            auto p = it->path();
            if (p.parent_path().filename() == me && p.parent_path().parent_path().filename() == "kiln")
                found.push_back(p.string());
            if (it.depth() > 6) it.disable_recursion_pending();
        }
    }
    return found;
}

LeakCheck::LeakCheck(std::string marker) : marker_(std::move(marker)), mounts_(count_mounts()) {}

void LeakCheck::verify() const {
    CHECK_MESSAGE(count_descendants(::getpid()) == 0, "a jailed process outlived run()");
    CHECK_MESSAGE(count_mounts() == mounts_, "the host's mount table changed");
    auto dirs = run_cgroup_dirs();
    CHECK_MESSAGE(dirs.empty(), "run cgroup left: " << (dirs.empty() ? "" : dirs.front()));
    if (!marker_.empty()) CHECK_MESSAGE(!process_named(marker_), "process '" << marker_ << "' still running");
}

TempDir::TempDir() {
    char tmpl[] = "/tmp/kiln-sandbox-test-XXXXXX";
    char* made = ::mkdtemp(tmpl);
    REQUIRE(made != nullptr);
    path_ = made;
    ::chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

HostListener::HostListener() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 4) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
}

HostListener::~HostListener() {
    if (fd_ >= 0) ::close(fd_);
}

}  // namespace kiln::sandbox::test
