// The runtime's contract: stdin, hooks, cancellation, errors, concurrency,
// workspace ownership, leftovers, and the cgroup v2 module.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "sandbox/cgroup.hpp"
#include "tests/sandbox/harness.hpp"

using namespace kiln::sandbox;
using namespace kiln::sandbox::test;
using std::chrono::milliseconds;

namespace {
// Where a cgroup2 hierarchy is mounted ("" when none is).
std::string cgroup_v2_mount() {
    std::ifstream in("/proc/self/mounts");
    for (std::string dev, dir, type, rest; in >> dev >> dir >> type && std::getline(in, rest);)
        if (type == "cgroup2") return dir;
    return "";
}
// A test's manager sits on this process's kiln/<pid>, which is also the
// shared runtime's subtree when both are of one version: the manager's
// destructor would remove it under the runtime, and every jail test after
// that would fail. Then the manager is left open.
struct KeepSharedSubtree {
    std::unique_ptr<cgroup::Manager>& m;
    ~KeepSharedSubtree() {
        if (m && m->kind() == runtime().capabilities().cgroup) (void)m.release();
    }
};
}  // namespace

TEST_CASE("stdin bytes are fed from memory") {
    auto spec = probe_spec({"cat"});
    spec.stdin_data.assign(300'000, 'x');
    spec.stdin_data += "end";
    auto r = run_ok(spec);
    CHECK(r.exit_code == 0);
    CHECK(r.stdout_data == spec.stdin_data);
}

TEST_CASE("exit codes and signals come back as they are") {
    SandboxSpec spec;
    spec.argv = {"/bin/sh", "-c", "echo out; echo err >&2; exit 7"};
    auto r = run_ok(spec);
    CHECK(r.exit_code == 7);
    CHECK(!r.signal);
    CHECK(r.stdout_data == "out\n");
    CHECK(r.stderr_data == "err\n");
    spec.argv = {"/bin/sh", "-c", "kill -SEGV $$"};
    r = run_ok(spec);
    CHECK(r.signal == SIGSEGV);
    CHECK(!r.exit_code);
    CHECK(r.timings.setup.count() > 0);
    CHECK(r.timings.run.count() > 0);
}

TEST_CASE("on_output streams and on_progress ticks") {
    auto spec = probe_spec({"sleep", "1"});
    // Ticks are due every 250 ms from the start of setup; a late tick does
    // not bring the next one closer than that (how many there are depends on
    // how long setup took, so the spacing is asserted, not the count).
    std::vector<milliseconds> at;
    RunHooks hooks;
    hooks.on_progress = [&](const Progress& p) { at.push_back(p.elapsed); };
    auto r = run_probe(spec, hooks);
    REQUIRE(at.size() >= 2);
    CHECK(at.front() >= milliseconds(250));
    for (std::size_t i = 1; i < at.size(); ++i)
        CHECK_MESSAGE(at[i] - at[i - 1] >= milliseconds(200), "tick " << i << " came " << (at[i] - at[i - 1]).count() << " ms after the last");
    CHECK(at.back() <= std::chrono::duration_cast<milliseconds>(r.duration));
    // Every 250 ms slot of the run that ended has its tick, give or take one.
    CHECK(at.size() + 1 >= static_cast<std::size_t>(std::chrono::duration_cast<milliseconds>(r.duration) / milliseconds(250)));
    std::string seen;
    RunHooks out;
    out.on_output = [&](std::string_view chunk, bool is_stderr) {
        if (!is_stderr) seen.append(chunk);
    };
    SandboxSpec echo;
    echo.argv = {"/bin/echo", "streamed"};
    run_ok(echo, out);
    CHECK(seen == "streamed\n");
}

TEST_CASE("request_stop() kills the jail at once") {
    LeakCheck leaks;
    std::stop_source stop;
    RunHooks hooks;
    hooks.stop = stop.get_token();
    std::thread canceller([&] {
        std::this_thread::sleep_for(milliseconds(200));
        stop.request_stop();
    });
    auto r = run_ok(probe_spec({"sleep", "60"}), hooks);
    canceller.join();
    CHECK(r.cancelled);
    CHECK(!r.timed_out);
    CHECK(r.duration < milliseconds(3000));
    leaks.verify();
}

TEST_CASE("setup failures are structured errors, not results") {
    LeakCheck leaks;
    SandboxSpec spec;
    spec.argv = {"/no/such/program"};
    auto r = runtime().run(spec, {});
    REQUIRE(!r.ok());
    CHECK(r.error().step == "execve /no/such/program");
    CHECK(r.error().err == ENOENT);
    CHECK_MESSAGE(r.error().message.find("must exist inside the jail") != std::string::npos, r.error().what());
    spec.argv = {"no-such-program-on-path"};
    r = runtime().run(spec, {});
    REQUIRE(!r.ok());
    CHECK(r.error().err == ENOENT);
    spec.argv = {"/bin/true"};
    spec.mounts = {{"/etc", "/opt/../etc", false}};
    r = runtime().run(spec, {});
    REQUIRE(!r.ok());
    CHECK(r.error().err == EINVAL);
    spec.mounts.clear();
    spec.workspace_dir = "/no/such/dir";
    r = runtime().run(spec, {});
    REQUIRE(!r.ok());
    spec.workspace_dir.clear();
    spec.argv.clear();
    CHECK(!runtime().run(spec, {}).ok());
    leaks.verify();
}

TEST_CASE("files of the spec are in the jail's root, read-only, and nowhere on the host") {
    LeakCheck leaks;
    SandboxSpec spec;
    std::string big(300'000, 'k');  // larger than the root's fixed room, to prove it grows
    spec.files = {{"/kiln/main.py", "print('hi')\n"}, {"/kiln/data/big.txt", big}};
    spec.argv = {"/bin/sh", "-c",
                 "cat /kiln/main.py; wc -c < /kiln/data/big.txt; ls -ln /kiln/main.py | cut -d' ' -f1;"
                 "echo x >> /kiln/main.py 2>/dev/null && echo writable || echo read-only"};
    auto r = run_ok(spec);
    CHECK(r.stdout_data == "print('hi')\n300000\n-rw-r--r--\nread-only\n");
    CHECK(!std::filesystem::exists("/kiln"));
    leaks.verify();
}

TEST_CASE("a spec file outside a directory of its own is refused with the reason") {
    std::vector<std::string> paths = {"main.py", "/main.py", "/kiln/../etc/x", "/proc/x", "/dev/x", "/tmp/x",
                                      "/workspace/x", "/usr/x"};
    // /etc/ssl is bound only where the host has it (Kiln's image has none).
    if (std::filesystem::exists("/etc/ssl")) paths.push_back("/etc/ssl/x");
    for (const auto& path : paths) {
        SandboxSpec spec;
        spec.argv = {"/bin/true"};
        spec.workspace_dir = "/tmp";
        spec.files = {{path, "x"}};
        auto r = runtime().run(spec, {});
        REQUIRE_MESSAGE(!r.ok(), path << " was accepted");
        CHECK(r.error().err == EINVAL);
        CHECK_MESSAGE(r.error().what().find(path) != std::string::npos, r.error().what());
    }
}

TEST_CASE("many runs at once from different threads") {
    LeakCheck leaks;
    std::atomic<int> good{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 4; ++i) {
                auto spec = probe_spec({"report"});
                auto r = runtime().run(spec, {});
                if (r && r->exit_code == 0 && r->stdout_data.find("uid 65534\n") != std::string::npos) ++good;
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(good == 24);
    leaks.verify();
}

namespace {
std::string thread_cgroups() {
    std::ifstream in("/proc/thread-self/cgroup");
    return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

// On cgroup v1 the jail's child moves itself into the run's group
// (cgroup_v1.cpp); the thread that cloned it must stay where it was, or the
// server's later work would be charged to, and killed with, a finished run.
TEST_CASE("a thread that started jails is still in the server's own cgroups") {
    LeakCheck leaks;
    std::string before = thread_cgroups();
    REQUIRE(!before.empty());
    auto ok = runtime().run(probe_spec({"report"}), {});
    REQUIRE(ok);
    CHECK(thread_cgroups() == before);
    auto spec = probe_spec({"report"});
    spec.argv = {"/nonexistent/program"};  // fails inside the jail, after the clone
    (void)runtime().run(spec, {});
    CHECK(thread_cgroups() == before);
    leaks.verify();
}

TEST_CASE("workspace files written in the jail belong to the host ids of capabilities()") {
    TempDir ws;
    const auto& caps = runtime().capabilities();
    if (is_root()) REQUIRE(::chown(ws.path().c_str(), caps.host_uid, caps.host_gid) == 0);
    SandboxSpec spec;
    spec.argv = {"/bin/sh", "-c", "echo hi > out && pwd"};
    spec.workspace_dir = ws.path();
    auto r = run_ok(spec);
    CHECK(r.stdout_data == "/workspace\n");
    struct stat st {};
    REQUIRE(::stat((ws.path() + "/out").c_str(), &st) == 0);
    CHECK(st.st_uid == caps.host_uid);
    CHECK(st.st_gid == caps.host_gid);
}

TEST_CASE("a rootfs directory replaces the host binds") {
    // A tiny rootfs: the static probe as /usr/bin/probe and an /etc of its own.
    TempDir root;
    std::filesystem::create_directories(root.path() + "/usr/bin");
    std::filesystem::create_directories(root.path() + "/etc");
    std::filesystem::copy_file(probe_path(), root.path() + "/usr/bin/probe");
    std::ofstream(root.path() + "/etc/rootfs-marker") << "yes\n";
    SandboxSpec spec;
    spec.rootfs = root.path();
    spec.argv = {"/usr/bin/probe", "exists", "/etc/rootfs-marker", "/usr/bin/python3", "/etc/ld.so.cache"};
    auto r = run_ok(spec);
    CHECK(r.stdout_data.find("exists /etc/rootfs-marker 1") != std::string::npos);
    CHECK(r.stdout_data.find("exists /usr/bin/python3 0") != std::string::npos);
}

KILN_TEST_CASE_IF("reap_leftovers removes the cgroups of a crashed server (cgroup v1)",
                  is_root() && has_cgroup_v1_controllers(), "needs root and cgroup v1 controllers") {
    runtime();  // the shared runtime made kiln/<pid> in each hierarchy
    std::string parent = "/sys/fs/cgroup/pids/kiln";
    REQUIRE(std::filesystem::exists(parent));
    // A dead server's subtree: a pid that cannot be running (above pid_max).
    std::string stale = parent + "/99999999";
    REQUIRE(::mkdir(stale.c_str(), 0755) == 0);
    REQUIRE(::mkdir((stale + "/run-7").c_str(), 0755) == 0);
    REQUIRE(reap_leftovers().ok());
    CHECK(!std::filesystem::exists(stale));
    CHECK(std::filesystem::exists(parent + "/" + std::to_string(::getpid())));  // a live server's stays
}

KILN_TEST_CASE_IF("cgroup v1 module: the child joins its run's groups itself, the spawning thread never does",
                  is_root() && has_cgroup_v1_controllers(), "needs root and cgroup v1 controllers") {
    runtime();
    auto mgr = cgroup::open_v1(cgroup::HostView::read());
    REQUIRE_MESSAGE(mgr.ok(), (mgr.ok() ? "" : mgr.error().what()));
    KeepSharedSubtree keep{*mgr};
    auto group = (*mgr)->create("run-v1-spawn", Limits{});
    REQUIRE(group.ok());
    std::string before = thread_cgroups();
    // The child joins (as the jail's setup does first thing), then checks
    // that each hierarchy of memory, pids, cpu and cpuacct lists it in the
    // run's group.
    auto spawned = (*group)->spawn_inside([](const cgroup::Group::Entry& entry) {
        pid_t pid = cgroup::clone_process(SIGCHLD, entry.cgroup_fd);
        if (pid == 0) {
            if (!cgroup::join_self(entry)) ::_exit(2);
            std::ifstream in("/proc/self/cgroup");
            int limited = 0, inside = 0;
            for (std::string line; std::getline(in, line);) {
                auto a = line.find(':'), b = line.find(':', a + 1);
                std::string controllers = "," + line.substr(a + 1, b - a - 1) + ",";
                bool relevant = false;
                for (const char* c : {",memory,", ",pids,", ",cpu,", ",cpuacct,"})
                    relevant = relevant || controllers.find(c) != std::string::npos;
                if (!relevant) continue;
                ++limited;
                if (line.size() > 13 && line.compare(line.size() - 13, 13, "/run-v1-spawn") == 0) ++inside;
            }
            ::_exit(limited > 0 && inside == limited ? 0 : 3);
        }
        return pid;
    });
    REQUIRE_MESSAGE(spawned.ok(), (spawned.ok() ? "" : spawned.error().what()));
    int status = 0;
    REQUIRE(::waitpid(*spawned, &status, 0) == *spawned);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(thread_cgroups() == before);
    CHECK((*group)->remove().ok());
    CHECK(!std::filesystem::exists((*mgr)->root() + "/run-v1-spawn"));
}

KILN_TEST_CASE_IF("cgroup v2 module: create, join, kill, remove on a controller-less hierarchy",
                  is_root() && !cgroup_v2_mount().empty(), "needs root and a cgroup2 hierarchy") {
    // This host's only v2 hierarchy (/sys/fs/cgroup/unified) has no
    // controllers (they are bound to v1), which still exercises the v2 group
    // lifecycle: mkdir, cgroup.procs, cgroup.kill, cgroup.events, rmdir.
    std::string base = cgroup_v2_mount();
    auto mgr = cgroup::open_v2_at(base, {});
    REQUIRE_MESSAGE(mgr.ok(), (mgr.ok() ? "" : mgr.error().what()));
    KeepSharedSubtree keep{*mgr};
    auto group = (*mgr)->create("run-v2-test", Limits{});
    REQUIRE(group.ok());
    // The child waits until it is in the group before forking, so both
    // generations are inside when the group is killed.
    int go[2];
    REQUIRE(::pipe(go) == 0);
    pid_t child = ::fork();
    if (child == 0) {
        char c;
        ::close(go[1]);
        if (::read(go[0], &c, 1) != 1) ::_exit(1);
        ::setsid();
        if (::fork() == 0) ::pause();  // a grandchild in the group too
        ::pause();
        ::_exit(0);
    }
    ::close(go[0]);
    REQUIRE((*group)->add(child).ok());
    REQUIRE(::write(go[1], "g", 1) == 1);
    ::close(go[1]);
    std::this_thread::sleep_for(milliseconds(50));
    (*group)->kill_all();
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    CHECK((*group)->remove().ok());
    CHECK(count_descendants(::getpid()) == 0);
    CHECK(!std::filesystem::exists((*mgr)->root() + "/run-v2-test"));

    // spawn_inside: clone3(CLONE_INTO_CGROUP), the child is in the group
    // from its first instruction (it checks before doing anything else).
    auto born = (*mgr)->create("run-v2-spawn", Limits{});
    REQUIRE(born.ok());
    auto spawned = (*born)->spawn_inside([](const cgroup::Group::Entry& entry) {
        pid_t pid = cgroup::clone_process(SIGCHLD, entry.cgroup_fd);
        if (pid == 0) {
            char buf[4096];
            int fd = ::open("/proc/self/cgroup", O_RDONLY);
            ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf - 1) : -1;
            buf[n > 0 ? n : 0] = '\0';
            ::_exit(std::strstr(buf, "/run-v2-spawn\n") ? 0 : 3);
        }
        return pid;
    });
    REQUIRE_MESSAGE(spawned.ok(), (spawned.ok() ? "" : spawned.error().what()));
    REQUIRE(::waitpid(*spawned, &status, 0) == *spawned);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK((*born)->remove().ok());
}

KILN_TEST_CASE_IF("cgroup v2 limits: memory, swap, pids and CPU quota are written to the run's group",
                  is_root() && has_cgroup_v2_controllers(), "needs root and a cgroup v2 hierarchy offering memory and pids") {
    // On a v1 host (like the development VM, whose controllers are bound to
    // v1) the limits are enforced through cgroup_v1.cpp instead, covered by
    // the hostile tests.
    auto mgr = cgroup::open_v2();
    REQUIRE_MESSAGE(mgr.ok(), (mgr.ok() ? "" : mgr.error().what()));
    KeepSharedSubtree keep{*mgr};
    auto group = (*mgr)->create("run-v2-limits", Limits{64ull << 20, 0.5, 16, milliseconds(1000), 1 << 20, 1 << 20});
    REQUIRE(group.ok());
    auto first_word = [&](const std::string& file) {
        std::ifstream in((*mgr)->root() + "/run-v2-limits/" + file);
        std::string v;
        in >> v;
        return v;
    };
    CHECK(first_word("memory.max") == std::to_string(64ull << 20));
    CHECK(first_word("pids.max") == "16");
    if (std::filesystem::exists((*mgr)->root() + "/run-v2-limits/memory.swap.max")) CHECK(first_word("memory.swap.max") == "0");
    if (std::filesystem::exists((*mgr)->root() + "/run-v2-limits/cpu.max")) CHECK(first_word("cpu.max") == "50000");
    CHECK((*group)->remove().ok());
}

// The reaping logic both versions share, on a fake tree: any host.
TEST_CASE("cgroup leftovers: only subtrees of servers that are gone are reaped, their processes killed") {
    TempDir fake;
    const std::string kiln = fake.path() + "/kiln";
    pid_t stray = ::fork();
    if (stray == 0) {
        ::pause();
        ::_exit(0);
    }
    REQUIRE(stray > 0);
    for (const std::string& dir : std::vector<std::string>{"", "/99999999", "/99999999/run-1", "/99999998", "/99999998/run-2", "/1", "/1/run-3",
                                  "/not-a-pid", "/" + std::to_string(::getpid())})
        std::filesystem::create_directories(kiln + dir);
    // A stale run group with a process still in it (a crashed server's jail).
    std::ofstream(kiln + "/99999998/run-2/cgroup.procs") << stray << "\n";
    cgroup::reap_stale_in(kiln);
    CHECK(!std::filesystem::exists(kiln + "/99999999"));
    // The reaper killed it: it is reapable within 2 s, or it is killed here and that is a failure.
    int status = 0;
    pid_t got = 0;
    for (int i = 0; i < 200 && (got = ::waitpid(stray, &status, WNOHANG)) == 0; ++i) ::usleep(10'000);
    if (got == 0) {
        ::kill(stray, SIGKILL);
        ::waitpid(stray, &status, 0);
        FAIL_CHECK("the process in the stale group was left running");
    } else {
        CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
    }
    CHECK(std::filesystem::exists(kiln + "/1/run-3"));  // pid 1 is running
    CHECK(std::filesystem::exists(kiln + "/not-a-pid"));
    CHECK(std::filesystem::exists(kiln + "/" + std::to_string(::getpid())));  // this server
}

// reap_stale_v2 finds kiln/ under this process's own v2 group and reaps
// it, on a v2 hierarchy with or without controllers.
KILN_TEST_CASE_IF("cgroup v2 leftovers: reap_stale_v2 removes a dead server's subtree",
                  is_root() && !cgroup_v2_mount().empty(), "needs root and a cgroup2 hierarchy") {
    std::ifstream own_file("/proc/self/cgroup");
    std::string own = "/";
    for (std::string line; std::getline(own_file, line);)
        if (line.rfind("0::", 0) == 0) own = line.substr(3);
    const std::string kiln = cgroup_v2_mount() + (own == "/" ? "" : own) + "/kiln";
    ::mkdir(kiln.c_str(), 0755);
    const std::string stale = kiln + "/99999999", live = kiln + "/1";  // pid 1 is running
    REQUIRE(::mkdir(stale.c_str(), 0755) == 0);
    REQUIRE(::mkdir((stale + "/run-7").c_str(), 0755) == 0);
    REQUIRE(::mkdir(live.c_str(), 0755) == 0);
    REQUIRE(cgroup::reap_stale_v2().ok());
    CHECK(!std::filesystem::exists(stale));
    CHECK(std::filesystem::exists(live));
    ::rmdir(live.c_str());
}
