// The workspace's bounds as root (issue 14, item 5): a tmpfs with an inode
// quota, and a per-session memory group that keeps what runs leave in the
// workspace (kernel memory for its files) charged to something bounded.
// A real jail makes the files.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include <filesystem>
#include <fstream>
#include <string>

#include "sandbox/runtime.hpp"
#include "tools/workspace.hpp"

using namespace kiln;

namespace {

// Makes symlinks in /workspace until the kernel refuses, at most 5000:
// prints "<made> <errno name or none>".
constexpr const char* kMakeLinks =
    "import errno, os\n"
    "n = 0\n"
    "try:\n"
    "    while n < 5000:\n"
    "        os.symlink('x' * 100, f'/workspace/l{n}')\n"
    "        n += 1\n"
    "    print(n, 'none')\n"
    "except OSError as e:\n"
    "    print(n, errno.errorcode[e.errno])\n";

// Options for workspaces under a scratch directory, with a session group
// on the real runtime (root only: tmpfs and cgroups).
tools::WorkspaceOptions root_options(const std::filesystem::path& root, sandbox::Runtime& rt) {
    tools::WorkspaceOptions o;
    o.root_dir = root.string() + "/ws";
    o.size_bytes = 16ull << 20;
    o.owner_uid = rt.capabilities().host_uid;
    o.owner_gid = rt.capabilities().host_gid;
    o.runtime = &rt;
    return o;
}

std::filesystem::path scratch(const char* name) {
    return std::filesystem::temp_directory_path() / (std::string(name) + "-" + std::to_string(::getpid()));
}

}  // namespace

TEST_CASE("workspace: max_files bounds its inodes, and a session group holds their kernel memory (C007 T003)") {
    if (::geteuid() != 0) {
        MESSAGE("not applicable: tmpfs workspaces and cgroups need a root server here");
        return;
    }
    auto rt = sandbox::make_native_runtime(sandbox::NativeOptions{});
    REQUIRE_MESSAGE(rt, (rt ? "" : rt.error().what()));
    auto root = scratch("kiln-quota-test");
    tools::WorkspaceOptions o = root_options(root, **rt);
    o.max_files = 1000;
    o.session_memory_bytes = 256ull << 20;
    {
        tools::WorkspaceManager manager(o);
        auto ws = manager.acquire("quota");
        REQUIRE(ws);
        REQUIRE((*ws)->group());
        CHECK((*ws)->group()->enforced());
        std::uint64_t before = (*ws)->group()->memory_bytes();

        sandbox::SandboxSpec spec;
        spec.argv = {"python3", "-c", kMakeLinks};
        spec.workspace_dir = (*ws)->path();
        spec.group = (*ws)->group_name();
        auto r = (*ws)->group() ? (*rt)->run(spec, {}) : make_error("no group", "");
        REQUIRE_MESSAGE(r, (r ? "" : r.error().what()));
        INFO("stdout: " << r->stdout_data << " stderr: " << r->stderr_data);
        CHECK(r->exit_code == 0);
        // The root directory is one of the 1000 inodes.
        CHECK(r->stdout_data == "999 ENOSPC\n");

        // The run's own group is gone; the inodes and dentries it made are
        // charged to the session's group now (at least ~0.5 KiB each).
        std::uint64_t after = (*ws)->group()->memory_bytes();
        CHECK(after > before + 999 * 512);
        CHECK(after <= o.session_memory_bytes);
        manager.release("quota");
    }
    // No session group left behind: kiln/<pid>/session-quota in no hierarchy.
    const std::string leaf = "/kiln/" + std::to_string(::getpid()) + "/session-quota";
    std::ifstream own("/proc/self/cgroup");
    for (std::string line; std::getline(own, line);) {
        auto colon = line.find(':', line.find(':') + 1);
        std::string ctrls = line.substr(line.find(':') + 1, colon - line.find(':') - 1);
        std::string path = line.substr(colon + 1);
        std::string mount = "/sys/fs/cgroup/" + (ctrls.empty() ? std::string("unified") : ctrls);
        for (const std::string& base : {mount, mount + (path == "/" ? "" : path)})
            CHECK_MESSAGE(!std::filesystem::exists(base + leaf), (base + leaf));
    }
    std::filesystem::remove_all(root);
}

namespace {

// Three processes open pipes until each has ~1000 descriptors in use: about
// 1500 pipes of 16 pages, past pipe-user-pages-soft (16384 pages) for the
// host user the jail maps to. Then says so and holds them.
constexpr const char* kHoardPipes =
    "import os, sys, time\n"
    "for _ in range(2):\n"
    "    if os.fork() == 0: break\n"
    "pipes = []\n"
    "try:\n"
    "    while len(pipes) < 500: pipes.append(os.pipe())\n"
    "except OSError: pass\n"
    "print('holding', flush=True)\n"
    "time.sleep(20)\n";

// The size the kernel gives a new pipe: 65536, or a page or two once the
// host user's pipe budget is spent.
constexpr const char* kPipeSize =
    "import fcntl, os\n"
    "r, w = os.pipe()\n"
    "print(fcntl.fcntl(w, 1032))\n";  // F_GETPIPE_SZ

}  // namespace

TEST_CASE("workspace: each session's jails run as host ids of their own, so per-user budgets are per session (C007 T003)") {
    if (::geteuid() != 0) {
        MESSAGE("not applicable: a rootless server has only its own ids to map");
        return;
    }
    auto rt = sandbox::make_native_runtime(sandbox::NativeOptions{});
    REQUIRE_MESSAGE(rt, (rt ? "" : rt.error().what()));
    auto root = scratch("kiln-ids-test");
    tools::WorkspaceOptions o = root_options(root, **rt);
    o.session_memory_bytes = 1ull << 30;
    o.session_ids = std::make_shared<tools::HostIdPool>(0x70000000u, 4);
    {
        tools::WorkspaceManager manager(o);
        auto a = manager.acquire("hoarder");
        auto b = manager.acquire("neighbour");
        REQUIRE(a);
        REQUIRE(b);
        CHECK((*a)->owner_uid() != (*b)->owner_uid());
        CHECK((*a)->owner_uid() >= 0x70000000u);
        struct stat st {};
        REQUIRE(::stat((*b)->path().c_str(), &st) == 0);
        CHECK(st.st_uid == (*b)->owner_uid());

        auto spec_in = [](const tools::Workspace& ws, const char* code) {
            sandbox::SandboxSpec spec;
            spec.argv = {"python3", "-c", code};
            spec.workspace_dir = ws.path();
            spec.group = ws.group_name();
            spec.host_uid = ws.owner_uid();
            spec.host_gid = ws.owner_gid();
            spec.limits.pids = 16;
            spec.limits.memory_bytes = 512ull << 20;
            spec.limits.timeout = std::chrono::milliseconds(30'000);
            return spec;
        };
        std::promise<void> holding;
        std::atomic<bool> signalled{false};
        auto signal_once = [&] {
            if (!signalled.exchange(true)) holding.set_value();
        };
        std::stop_source stop;
        sandbox::RunHooks hooks;
        hooks.stop = stop.get_token();
        hooks.on_output = [&](std::string_view text, bool) {
            if (text.find("holding") != std::string_view::npos) signal_once();
        };
        auto hoard = spec_in(**a, kHoardPipes);
        std::thread hoarder([&] {
            (void)(*rt)->run(hoard, hooks);
            signal_once();
        });
        holding.get_future().wait();
        auto same = (*rt)->run(spec_in(**a, kPipeSize), {});
        auto other = (*rt)->run(spec_in(**b, kPipeSize), {});
        stop.request_stop();
        hoarder.join();
        REQUIRE(same);
        REQUIRE(other);
        // Within the hoarding session its budget is spent; the other session's is whole.
        // (PIPE_MIN_DEF_BUFFERS pages: two on this kernel, one on older ones.)
        CHECK((same->stdout_data == "8192\n" || same->stdout_data == "4096\n"));
        CHECK(other->stdout_data == "65536\n");
    }
    std::filesystem::remove_all(root);
}
