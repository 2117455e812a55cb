// Live jails (Runtime::start): a program that keeps its state across
// requests over its pipes, interrupted, measured, killed and removed, on the
// real kernel. The persistent interpreter's end-to-end tests are in
// tests/e2e/interpreter.test.mjs.
#include <poll.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "tests/sandbox/harness.hpp"

using namespace kiln::sandbox;
using namespace kiln::sandbox::test;
using std::chrono::milliseconds;

namespace {

// Echoes each line with a counter (state kept between requests); SIGINT
// prints "INT" and goes on; "hog" allocates until the memory limit.
const char* kEchoScript = R"(
import os, signal, sys
n = 0
signal.signal(signal.SIGINT, lambda *a: os.write(1, b"INT\n"))
for line in sys.stdin:
    n += 1
    if line.strip() == "hog":
        hog = [bytearray(1 << 20) for _ in range(10000)]
    sys.stdout.write("%d %s" % (n, line))
    sys.stdout.flush()
)";

SandboxSpec echo_spec() {
    SandboxSpec spec;
    spec.argv = {"/usr/bin/python3", "-c", kEchoScript};
    spec.cwd = "/tmp";
    spec.limits.memory_bytes = 64ull << 20;
    return spec;
}

std::string read_line(int fd, milliseconds wait = milliseconds(10'000)) {
    std::string out;
    const auto until = std::chrono::steady_clock::now() + wait;
    while (out.empty() || out.back() != '\n') {
        pollfd p{fd, POLLIN, 0};
        auto left = std::chrono::duration_cast<milliseconds>(until - std::chrono::steady_clock::now()).count();
        if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
        char c;
        ssize_t n = ::read(fd, &c, 1);
        if (n <= 0) break;
        out += c;
    }
    return out;
}

void send(LiveJail& jail, const std::string& text) {
    REQUIRE(::write(jail.stdin_fd(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
}

bool ended_within(LiveJail& jail, milliseconds wait) {
    pollfd p{jail.ended_fd(), POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(wait.count())) == 1;
}

// The live jails' cgroup directories of this process, in any hierarchy.
std::size_t live_cgroups() {
    std::size_t n = 0;
    std::error_code ec;
    const std::string own = "/kiln/" + std::to_string(::getpid());
    for (auto it = std::filesystem::recursive_directory_iterator("/sys/fs/cgroup", ec);
         it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        const std::string path = it->path().string();
        if (it->is_directory(ec) && path.find(own) != std::string::npos &&
            it->path().filename().string().rfind("run-live-", 0) == 0)
            ++n;
        if (it.depth() > 8) it.disable_recursion_pending();
    }
    return n;
}

}  // namespace

TEST_CASE("a live jail keeps its state across requests, takes SIGINT, and is gone when destroyed") {
    KILN_REQUIRE_HOST(::access("/usr/bin/python3", X_OK) == 0, "no /usr/bin/python3 on this host");
    const std::size_t cgroups_before = live_cgroups();
    auto jail = runtime().start(echo_spec());
    REQUIRE_MESSAGE(jail, (jail ? "" : jail.error().what()));
    LiveJail& j = **jail;
    send(j, "a\n");
    CHECK(read_line(j.stdout_fd()) == "1 a\n");
    send(j, "b\n");
    CHECK(read_line(j.stdout_fd()) == "2 b\n");  // the same process: its counter went on
    REQUIRE(j.interrupt().ok());
    CHECK(read_line(j.stdout_fd()) == "INT\n");
    CHECK(j.alive());
    send(j, "c\n");
    CHECK(read_line(j.stdout_fd()) == "3 c\n");
    LiveStats s = j.stats();
    if (s.have_cgroup) {
        CHECK(s.memory_bytes > 0);
        CHECK(live_cgroups() > cgroups_before);
    }
    j.kill();
    CHECK(ended_within(j, milliseconds(5000)));
    CHECK_FALSE(j.alive());
    ExecResult r = j.end();
    CHECK(r.signal == 9);
    jail->reset();
    CHECK(live_cgroups() == cgroups_before);
}

// A rootless server has no cgroup of its own to divide: its jails have rlimits only.
KILN_TEST_CASE_IF("a live jail's memory limit holds for the jail as a whole: the OOM killer ends it and says so",
                  is_root(), "a rootless server has no memory cgroup: the jail's limit is RLIMIT_AS per process") {
    KILN_REQUIRE_HOST(::access("/usr/bin/python3", X_OK) == 0, "no /usr/bin/python3 on this host");
    KILN_REQUIRE_HOST(runtime().capabilities().cgroup != "none (rlimits only)", "no memory cgroup: the jail's limit is RLIMIT_AS per process");
    auto jail = runtime().start(echo_spec());
    REQUIRE_MESSAGE(jail, (jail ? "" : jail.error().what()));
    send(**jail, "hog\n");
    CHECK(ended_within(**jail, milliseconds(20'000)));
    ExecResult r = (*jail)->end();
    CHECK(r.oom_killed);
    CHECK(r.peak_memory_bytes <= (64ull << 20) + (1ull << 20));
}

TEST_CASE("a live jail dies with the thread that started it (PR_SET_PDEATHSIG)") {
    KILN_REQUIRE_HOST(::access("/usr/bin/python3", X_OK) == 0, "no /usr/bin/python3 on this host");
    kiln::Result<std::unique_ptr<LiveJail>> jail = kiln::make_error("test", "not started");
    std::thread([&] { jail = runtime().start(echo_spec()); }).join();
    REQUIRE_MESSAGE(jail, (jail ? "" : jail.error().what()));
    CHECK(ended_within(**jail, milliseconds(5000)));
}
