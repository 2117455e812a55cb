// kiln run end to end: exit codes, --json, flag errors, and the rootless
// mode (the whole jail as an ordinary user, via setpriv).
#include <nlohmann/json.hpp>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "tests/sandbox/harness.hpp"

using namespace kiln::sandbox::test;

namespace {

std::string kiln_run(const std::string& args) {
    return kiln_path() + " run --validation off " + args;
}

}  // namespace

TEST_CASE("kiln run: exit status mapping") {
    CHECK(sh(kiln_run("-- /bin/sh -c 'exit 7'")).code == 7);
    CHECK(sh(kiln_run("-- /bin/sh -c 'kill -KILL $$'")).code == 128 + 9);
    CHECK(sh(kiln_run("--timeout 300ms -- /bin/sleep 10")).code == 124);
    CHECK(sh(kiln_run("-- /no/such/thing")).code == 127);
    auto o = sh(kiln_run("-- /bin/echo streamed"));
    CHECK(o.code == 0);
    CHECK(o.out == "streamed\n");
}

KILN_TEST_CASE_IF("kiln run: memory limit exit code 125 when a cgroup enforces it",
                  is_root(), "a rootless kiln run has rlimits only: the allocation fails instead") {
    auto o = sh(kiln_run("--memory 32M -- /usr/bin/python3 -c 'x = bytearray(200 << 20)'"));
    CHECK_MESSAGE(o.code == 125, o.out);
}

// kiln run's one run uses its kiln/<pid> subtree as the run's group (cgroup
// v1, NativeOptions::single_run): whatever the run ends in, nothing stays.
KILN_TEST_CASE_IF("kiln run leaves no cgroup directory behind, whatever the run ends in",
                  is_root() && has_cgroup_v1_controllers(), "needs root and cgroup v1 (a rootless kiln run creates no cgroup; the single-run subtree is v1 only)") {
    auto kiln_dirs = [] {
        std::set<std::string> found;
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator("/sys/fs/cgroup/pids/kiln", ec))
            if (e.is_directory(ec)) found.insert(e.path().filename().string());
        found.erase(std::to_string(::getpid()));  // this test process's own runtime
        return found;
    };
    auto before = kiln_dirs();
    CHECK(sh(kiln_run("-- /bin/true")).code == 0);
    CHECK(sh(kiln_run("--timeout 300ms -- /bin/sh -c 'sleep 10 & sleep 10'")).code == 124);
    CHECK(sh(kiln_run("--memory 32M -- /usr/bin/python3 -c 'x = bytearray(200 << 20)'")).code == 125);
    CHECK(sh(kiln_run("-- /no/such/thing")).code == 127);
    CHECK(kiln_dirs() == before);
}

// As root, kiln run's network namespace is made on a second thread while
// flags are parsed (cmd_run.cpp, start_network) and the jail joins it; as
// a plain user the jail's clone() makes it. Either way the jail has a
// working loopback of its own and cannot reach the host's.
TEST_CASE("kiln run: the jail has its own working loopback; the host's is unreachable (C003)") {
    HostListener host;
    std::string port = std::to_string(host.port());

    auto reach_host = sh(kiln_run("-- /usr/bin/python3 -c 'import socket; "
                                  "print(\"connect\", socket.socket().connect_ex((\"127.0.0.1\", " + port + ")))'"));
    CHECK_MESSAGE(reach_host.out == "connect " + std::to_string(ECONNREFUSED) + "\n", reach_host.out);
    CHECK(::accept(host.fd(), nullptr, nullptr) < 0);

    auto own = sh(kiln_run("-- /usr/bin/python3 -c '"
                           "import socket; s = socket.create_server((\"127.0.0.1\", 0)); "
                           "c = socket.create_connection(s.getsockname()); a, _ = s.accept(); "
                           "c.sendall(b\"ok\"); print(a.recv(2).decode())'"));
    CHECK_MESSAGE(own.out == "ok\n", own.out);
}

TEST_CASE("kiln run: a missing kiln-init is a setup failure that says what to do") {
    auto o = sh("KILN_INIT=/no/such/kiln-init " + kiln_run("-- /bin/true"));
    CHECK(o.code == 71);
    CHECK_MESSAGE(o.out.find("tried /no/such/kiln-init") != std::string::npos, o.out);
    CHECK(o.out.find("set KILN_INIT") != std::string::npos);
}

TEST_CASE("kiln run: bad flag values name the flag") {
    auto o = sh(kiln_run("--memory lots -- /bin/true"));
    CHECK(o.code == 64);
    CHECK(o.out.find("--memory") != std::string::npos);
    o = sh(kiln_run("--seccomp bogus -- /bin/true"));
    CHECK(o.code == 64);
    CHECK(o.out.find("--seccomp") != std::string::npos);
    o = sh(kiln_run("--workspace /no/such/dir -- /bin/true"));
    CHECK(o.code == 64);
    CHECK(o.out.find("--workspace") != std::string::npos);
}

TEST_CASE("kiln run --json prints the ExecResult fields") {
    auto o = sh(kiln_path() + " run --json --validation off --timeout 5s -- /bin/sh -c 'echo hi; echo oops >&2; exit 3'");
    CHECK(o.code == 3);
    auto j = nlohmann::json::parse(o.out);
    CHECK(j["exit_code"] == 3);
    CHECK(j["signal"].is_null());
    CHECK(j["stdout"] == "hi\n");
    CHECK(j["stderr"] == "oops\n");
    for (const char* key : {"timed_out", "oom_killed", "stdout_truncated", "stderr_truncated", "duration_ms",
                            "cpu_ms", "peak_memory_bytes"})
        CHECK_MESSAGE(j.contains(key), key);
    o = sh(kiln_path() + " run --json -- /bin/true");
    CHECK(nlohmann::json::parse(o.out)["validation"] == "allow");
}

TEST_CASE("kiln run validates the command line as shell before the jail starts") {
    // Reading the shadow file and piping it to a network client: the
    // balanced policy wants approval, which a command line cannot give.
    auto o = sh(kiln_path() + " run -- /bin/sh -c 'cat /etc/shadow | nc 10.0.0.1 80'");
    CHECK(o.code == 77);
    CHECK(o.out.find("refused by the validator") != std::string::npos);
    CHECK(o.out.find("cred.shadow") != std::string::npos);
    // warn: the findings are printed and the command runs.
    o = sh(kiln_path() + " run --validation warn -- /bin/sh -c 'cat /etc/shadow 2>/dev/null; echo ran'");
    CHECK(o.code == 0);
    CHECK(o.out.find("cred.shadow") != std::string::npos);
    CHECK(o.out.find("ran\n") != std::string::npos);
}

TEST_CASE("kiln run decides as run_command does: code approved with `kiln trust add` runs") {
    // security::decide: an ask is approved by the trust store, else the
    // policy's fallback (deny under balanced) refuses it.
    TempDir state;
    const std::string kiln = kiln_path() + " --set server.state_dir=" + state.path();
    const std::string line = "/bin/sh -c 'cat /etc/shadow | nc 127.0.0.1 9'";
    auto o = sh(kiln + " run -- " + line);
    CHECK(o.code == 77);
    CHECK(o.out.find("policy fallback: deny") != std::string::npos);
    CHECK(o.out.find("kiln trust add --sha256") != std::string::npos);
    {
        std::ofstream f(state.path() + "/cmd");
        f << line;
    }
    o = sh(kiln + " trust add " + state.path() + "/cmd");
    REQUIRE(o.code == 0);
    o = sh(kiln + " run -- " + line);
    CHECK(o.code != 77);
    CHECK(o.out.find("is in the trust store") != std::string::npos);
}

KILN_TEST_CASE_IF("rootless: kiln run as an ordinary user keeps every jail control",
                  is_root(), "already unprivileged: the whole suite is the rootless run") {
    passwd* pw = ::getpwnam("kilntest");
    KILN_REQUIRE_HOST(pw != nullptr, "no user 'kilntest' (CI creates it: useradd -m kilntest)");
    TempDir ws;
    std::filesystem::copy_file(probe_path(), ws.path() + "/probe");
    REQUIRE(::chown(ws.path().c_str(), pw->pw_uid, pw->pw_gid) == 0);
    REQUIRE(::chown((ws.path() + "/probe").c_str(), pw->pw_uid, pw->pw_gid) == 0);
    std::string as_user = "cd / && setpriv --reuid=kilntest --regid=kilntest --clear-groups env -i PATH=/usr/bin:/bin " +
                          kiln_path() + " run --json --validation off --workspace " + ws.path() + " -- /workspace/probe ";
    auto o = sh(as_user + "report");
    REQUIRE_MESSAGE(o.code == 0, o.out);
    auto j = nlohmann::json::parse(o.out);
    auto rep = parse(j["stdout"].get<std::string>());
    CHECK(rep["uid"] == "65534");
    CHECK(rep["CapEff"] == "0000000000000000");
    CHECK(rep["CapBnd"] == "0000000000000000");
    CHECK(rep["NoNewPrivs"] == "1");
    CHECK(rep["Seccomp"] == "2");
    CHECK(j["notes"].dump().find("RLIMIT") != std::string::npos);  // stated, not pretended

    o = sh(as_user + "syscalls");
    REQUIRE_MESSAGE(o.code == 0, o.out);
    auto out = nlohmann::json::parse(o.out)["stdout"].get<std::string>();
    for (const char* name : {"mount", "unshare", "ptrace", "bpf", "keyctl"})
        CHECK_MESSAGE(out.find(std::string("syscall ") + name + " 1\n") != std::string::npos, std::string(name));
    CHECK(out.find("syscall setuid0 22\n") != std::string::npos);
    REQUIRE_MESSAGE(o.code == 0, o.out);
    o = sh(as_user + "write /usr/x");
    REQUIRE_MESSAGE(o.code == 0, o.out);
    // "write <path> <errno>": refused with an errno, not silent.
    std::string refused = parse(nlohmann::json::parse(o.out)["stdout"].get<std::string>())["write"];
    CHECK(refused.rfind("/usr/x ", 0) == 0);
    CHECK(refused != "/usr/x 0");
    o = sh(as_user + "write /workspace/x");
    CHECK(nlohmann::json::parse(o.out)["stdout"].get<std::string>() == "write /workspace/x 0\n");
}

// Each preset's limits reach the jail through kiln run: the ones --json
// shows, and the ones the kernel holds inside (RLIMIT_NPROC is pids + 1;
// the strict profile stacks a second seccomp filter that refuses fork).
TEST_CASE("kiln run: every policy preset's limits reach the jail") {
    struct Preset {
        const char* name;
        std::uint64_t memory;
        double cpus;
        unsigned pids;
        long timeout_ms;
        std::uint64_t tmp_size;
        const char* seccomp;
    };
    for (const Preset& p : {Preset{"permissive", 1ull << 30, 2, 256, 60'000, 256ull << 20, "default"},
                            Preset{"balanced", 256ull << 20, 1, 64, 30'000, 64ull << 20, "default"},
                            Preset{"strict", 256ull << 20, 1, 32, 20'000, 32ull << 20, "default"},
                            Preset{"paranoid", 128ull << 20, 0.5, 16, 10'000, 16ull << 20, "strict"}}) {
        CAPTURE(p.name);
        std::string run = kiln_path() + " --set policy.preset=" + p.name + " run --json --validation off ";
        auto o = sh(run + "-- /bin/cat /proc/self/status /proc/self/limits");
        REQUIRE_MESSAGE(o.code == 0, o.out);
        auto j = nlohmann::json::parse(o.out);
        const auto& limits = j["limits"];
        CHECK(limits["memory_bytes"] == p.memory);
        CHECK(limits["cpus"] == p.cpus);
        CHECK(limits["pids"] == p.pids);
        CHECK(limits["timeout_ms"] == p.timeout_ms);
        CHECK(limits["tmp_size_bytes"] == p.tmp_size);
        CHECK(limits["seccomp"] == p.seccomp);
        CHECK(limits["network"] == "none");

        auto inside = j["stdout"].get<std::string>();
        std::string nproc = std::to_string(p.pids + 1);
        CHECK_MESSAGE(inside.find("Max processes             " + nproc + " ") != std::string::npos, inside);
        bool strict = std::string(p.seccomp) == "strict";
        CHECK_MESSAGE(inside.find(seccomp_filters_line(strict ? 2 : 1)) != std::string::npos, inside);
        auto fork = sh(kiln_path() + " --set policy.preset=" + p.name + " run --validation off -- /bin/sh -c '/bin/true && echo forked'");
        CHECK_MESSAGE((fork.out.find("forked") != std::string::npos) == !strict, fork.out);
    }
}

// Flags, then the environment, then the config file, then the preset: the
// first that sets a limit gives it, whatever the preset.
TEST_CASE("kiln run: sandbox flags and environment override the preset's limits") {
    auto o = sh("KILN_SANDBOX_PIDS=40 " + kiln_path() + " --set policy.preset=paranoid --set sandbox.memory=96M run --json "
                "--validation off --seccomp default --timeout 3s -- /bin/true");
    REQUIRE_MESSAGE(o.code == 0, o.out);
    auto limits = nlohmann::json::parse(o.out)["limits"];
    CHECK(limits["pids"] == 40);                  // environment
    CHECK(limits["memory_bytes"] == 96ull << 20); // --set
    CHECK(limits["timeout_ms"] == 3000);          // flag
    CHECK(limits["seccomp"] == "default");        // flag over the preset's strict
    CHECK(limits["cpus"] == 0.5);                 // the preset's, nothing set it
}

TEST_CASE("kiln selftest runs its jails with the effective policy's limits and shows them") {
    auto o = sh(kiln_path() + " --set policy.preset=paranoid selftest --json");
    auto start = o.out.find('{');
    REQUIRE_MESSAGE(start != std::string::npos, o.out);
    auto j = nlohmann::json::parse(o.out.substr(start));
    CHECK_MESSAGE(j["missing_required"].empty(), o.out);
    CHECK(j["policy"] == "paranoid");
    CHECK(j["limits"]["memory_bytes"] == 128ull << 20);
    CHECK(j["limits"]["pids"] == 16);
    CHECK(j["limits"]["seccomp"] == "strict");
}
