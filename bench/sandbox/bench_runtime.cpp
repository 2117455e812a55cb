// In-process benchmark of the native runtime: what a server thread pays
// per run, without the kiln process's own start-up. Prints medians of the
// phase timings and of the wall time, and the same command run bare
// (fork+exec from this process) in the same run, for the ratio.
//
//   bench_runtime [runs] [command...]      e.g. bench_runtime 200 /bin/true
//   bench_runtime --concurrent K           server RSS per concurrent run (K jails sleeping 1 s)
//   KILN_BENCH_GAP_MS=50 bench_runtime ... idle this long between runs, as an
//                                          agent's calls are (cold kernel caches)
// As root, each run is followed by one that joins a shared network namespace
// (as a session's runs do in the server, sandbox/net.hpp), for comparison.
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/net.hpp"
#include "sandbox/runtime.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

double bare_run_ms(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    auto t0 = Clock::now();
    pid_t pid;
    if (posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return -1;
    int st;
    waitpid(pid, &st, 0);
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

long rss_kib() {
    FILE* f = std::fopen("/proc/self/status", "r");
    char line[256];
    long kib = 0;
    while (f && std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "VmRSS: %ld", &kib) == 1) break;
    if (f) std::fclose(f);
    return kib;
}

// Server-side memory of K runs at once: RSS while they run minus RSS before,
// after one warm-up run (so the runtime's own one-time allocations are excluded).
int concurrent(kiln::sandbox::Runtime& rt, int k) {
    kiln::sandbox::SandboxSpec spec;
    spec.argv = {"/bin/sleep", "1"};
    (void)rt.run(spec, {});
    long before = rss_kib();
    std::vector<std::thread> threads;
    std::atomic<long> peak{0};
    for (int i = 0; i < k; ++i) threads.emplace_back([&] { (void)rt.run(spec, {}); });
    for (int i = 0; i < 8; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        peak = std::max(peak.load(), rss_kib());
    }
    for (auto& t : threads) t.join();
    std::printf("concurrent runs %d: RSS before %ld KiB, during %ld KiB, per run %.1f KiB (thread stacks included)\n", k,
                before, peak.load(), double(peak.load() - before) / k);
    return 0;
}

struct Samples {
    std::vector<double> wall, setup, run, teardown, bare;
};

// `runs` jailed runs of spec, each followed by the command run bare.
bool measure(kiln::sandbox::Runtime& rt, const kiln::sandbox::SandboxSpec& spec, const std::vector<std::string>& cmd,
             int runs, int gap_ms, Samples& out) {
    for (int i = 0; i < runs; ++i) {
        if (gap_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
        auto t0 = Clock::now();
        auto r = rt.run(spec, {});
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (!r || r->exit_code != 0) {
            std::fprintf(stderr, "run %d failed: %s\n", i, r ? "nonzero exit" : r.error().what().c_str());
            return false;
        }
        out.wall.push_back(ms);
        out.setup.push_back(r->timings.setup.count() / 1000.0);
        out.run.push_back(r->timings.run.count() / 1000.0);
        out.teardown.push_back(r->timings.teardown.count() / 1000.0);
        out.bare.push_back(bare_run_ms(cmd));
    }
    return true;
}

int main(int argc, char** argv) {
    if (argc > 2 && std::string(argv[1]) == "--concurrent") {
        auto rt = kiln::sandbox::make_native_runtime({});
        if (!rt) return 1;
        return concurrent(**rt, std::atoi(argv[2]));
    }
    int runs = argc > 1 ? std::atoi(argv[1]) : 100;
    std::vector<std::string> cmd;
    for (int i = 2; i < argc; ++i) cmd.push_back(argv[i]);
    if (cmd.empty()) cmd = {"/bin/true"};

    auto rt = kiln::sandbox::make_native_runtime({});
    if (!rt) {
        std::fprintf(stderr, "bench_runtime: %s\n", rt.error().what().c_str());
        return 1;
    }
    std::printf("cgroup: %s  lsm: %s  rootless: %d\n", (*rt)->capabilities().cgroup.c_str(),
                (*rt)->capabilities().lsm.c_str(), (*rt)->capabilities().rootless);
    kiln::sandbox::SandboxSpec spec;
    spec.argv = cmd;
    Samples fresh, joined;
    auto shared = kiln::sandbox::net::Namespace::create();  // fails when rootless: no comparison then
    kiln::sandbox::SandboxSpec shared_spec = spec;
    if (shared) shared_spec.network_fd = (*shared)->fd();
    const char* gap_env = std::getenv("KILN_BENCH_GAP_MS");
    int gap_ms = gap_env ? std::atoi(gap_env) : 0;
    // In blocks, not interleaved: a fresh namespace is torn down by a kernel
    // worker after its run, and that cost belongs to the fresh runs' block.
    for (int block = 0; block < 2; ++block) {
        if (!measure(**rt, spec, cmd, runs / 2, gap_ms, fresh)) return 1;
        if (shared && !measure(**rt, shared_spec, cmd, runs / 2, gap_ms, joined)) return 1;
    }
    double w = median(fresh.wall), b = median(fresh.bare);
    std::printf("runs=%d command=%s gap=%d ms\n", runs, cmd[0].c_str(), gap_ms);
    std::printf("jail wall median %.3f ms (setup %.3f, run %.3f, teardown %.3f)\n", w, median(fresh.setup),
                median(fresh.run), median(fresh.teardown));
    std::printf("bare wall median %.3f ms\n", b);
    std::printf("overhead %.3f ms, ratio %.2fx\n", w - b, b > 0 ? w / b : 0.0);
    if (shared)
        std::printf("joining a shared network namespace: jail wall median %.3f ms (setup %.3f), overhead %.3f ms "
                    "(bare in that block %.3f ms)\n",
                    median(joined.wall), median(joined.setup), median(joined.wall) - median(joined.bare), median(joined.bare));
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::printf("bench process max RSS %ld KiB\n", ru.ru_maxrss);
    return 0;
}
