// Audit log throughput and added latency per append, for fsync always,
// batch and never, against baselines measured in the same run on the same
// filesystem: a bare write(2) of a line of the same size, and a bare
// write(2)+fdatasync(2). Usage:
//   bench_audit [--dir DIR] [--records N] [--always-records N]
// DIR must be on the disk the server will log to (not a tmpfs, where
// fdatasync costs nothing); default: a fresh directory under the current one.
#include <fcntl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "security/audit/audit_log.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Run {
    std::string name;
    std::size_t records = 0;
    double seconds = 0;
    std::vector<double> latency_us;
    std::uint64_t syncs = 0;
};

double pct(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size())))];
}

// A decision record of typical size: findings, threats, a short program.
nlohmann::json typical_fields(std::size_t i) {
    return {{"session_id", "s-" + std::to_string(i % 8)},
            {"tool", "run_code"},
            {"language", "python"},
            {"code", "import os\nfor i in range(10):\n    print(i, os.getpid())\n# request " + std::to_string(i) + "\n"},
            {"decision", "allow"},
            {"findings", {{{"rule", "proc.spawn"}, {"threat", "T002"}, {"severity", "low"}}}},
            {"threats", {{{"id", "T002"}, {"score", 20}, {"level", "low"}, {"mitigated", true}}}},
            {"controls_in_force", {"C001", "C002", "C005", "C011"}},
            {"timings", {{"validate_us", 120}, {"setup_us", 8000}, {"run_us", 30000}, {"teardown_us", 700}}}};
}

Run bench_log(const std::string& dir, const std::string& mode, std::size_t n, unsigned threads = 1) {
    std::filesystem::remove_all(dir);
    kiln::AuditConfig cfg;
    cfg.path = dir + "/audit.jsonl";
    cfg.fsync = mode;
    Run run;
    run.name = mode + (threads > 1 ? " x" + std::to_string(threads) + " threads" : "");
    auto log = kiln::audit::AuditLog::open(cfg);
    if (!log) {
        std::fprintf(stderr, "open: %s\n", log.error().what().c_str());
        std::exit(1);
    }
    std::vector<std::vector<double>> lat(threads);
    auto start = Clock::now();
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            for (std::size_t i = t; i < n; i += threads) {
                auto fields = typical_fields(i);
                auto t0 = Clock::now();
                auto ref = (*log)->append("decision", std::move(fields));
                lat[t].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
                if (!ref) std::exit(2);
            }
        });
    for (auto& th : pool) th.join();
    run.syncs = (*log)->stats().syncs;  // the close below may add one more
    log->reset();  // the destructor syncs a pending batch: part of the cost
    run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    run.records = n;
    for (auto& v : lat) run.latency_us.insert(run.latency_us.end(), v.begin(), v.end());
    return run;
}

// The floor: the same number of lines of the same size, no JSON, no hash.
Run bench_raw(const std::string& dir, std::size_t n, std::size_t line_size, bool sync) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::string path = dir + "/raw.jsonl";
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    std::string line(line_size - 1, 'x');
    line += '\n';
    Run run;
    run.name = sync ? "baseline write+fdatasync" : "baseline write";
    auto start = Clock::now();
    for (std::size_t i = 0; i < n; ++i) {
        auto t0 = Clock::now();
        if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::exit(3);
        if (sync && ::fdatasync(fd) != 0) std::exit(4);
        run.latency_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    run.records = n;
    run.syncs = sync ? n : 0;
    ::close(fd);
    return run;
}

std::size_t typical_line_size(const std::string& dir) {
    std::filesystem::remove_all(dir);
    kiln::AuditConfig cfg;
    cfg.path = dir + "/size.jsonl";
    cfg.fsync = "never";
    auto log = kiln::audit::AuditLog::open(cfg);
    if (!log || !(*log)->append("decision", typical_fields(12345))) std::exit(5);
    return std::filesystem::file_size(cfg.path);
}

void print(const Run& r) {
    std::printf("| %-28s | %8zu | %10.0f | %9.1f | %9.1f | %8.3f |\n", r.name.c_str(), r.records,
                static_cast<double>(r.records) / r.seconds, pct(r.latency_us, 50), pct(r.latency_us, 99),
                r.records ? static_cast<double>(r.syncs) / static_cast<double>(r.records) : 0.0);
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir = (std::filesystem::current_path() / "bench-audit-data").string();
    std::size_t n = 100'000, n_always = 2'000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!std::strcmp(argv[i], "--records")) n = std::stoul(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--always-records")) n_always = std::stoul(argv[i + 1]);
    }
    struct statfs fs {};
    ::statfs(std::filesystem::path(dir).parent_path().c_str(), &fs);
    std::size_t line = typical_line_size(dir);
    std::printf("dir %s (statfs f_type 0x%lx%s), record %zu bytes, %u cores\n\n", dir.c_str(),
                static_cast<unsigned long>(fs.f_type), fs.f_type == 0x01021994 ? ", tmpfs: fsync is free here" : "",
                line, std::thread::hardware_concurrency());
    std::printf("| %-28s | %8s | %10s | %9s | %9s | %8s |\n", "mode", "records", "records/s", "p50 us", "p99 us", "syncs/rec");
    std::printf("|%s|%s|%s|%s|%s|%s|\n", std::string(30, '-').c_str(), std::string(10, '-').c_str(),
                std::string(12, '-').c_str(), std::string(11, '-').c_str(), std::string(11, '-').c_str(),
                std::string(10, '-').c_str());
    print(bench_raw(dir, n, line, false));
    print(bench_raw(dir, n_always, line, true));
    for (auto [mode, count, threads] : {std::tuple{"never", n, 1u}, std::tuple{"batch", n, 1u},
                                         std::tuple{"always", n_always, 1u}, std::tuple{"always", n_always, 4u}}) {
        print(bench_log(dir, mode, count, threads));
    }
    std::filesystem::remove_all(dir);
    return 0;
}
