// The workspace's bounds as root (issue 14, item 5): a tmpfs with an inode
// quota, and a per-session memory group that keeps what runs leave in the
// workspace (kernel memory for its files) charged to something bounded.
// A real jail makes the files.
#include <doctest/doctest.h>
#include <unistd.h>

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

}  // namespace

TEST_CASE("workspace: max_files bounds its inodes, and a session group holds their kernel memory (C007 T003)") {
    if (::geteuid() != 0) {
        MESSAGE("not applicable: tmpfs workspaces and cgroups need a root server here");
        return;
    }
    auto rt = sandbox::make_native_runtime(sandbox::NativeOptions{});
    REQUIRE_MESSAGE(rt, (rt ? "" : rt.error().what()));
    auto root = std::filesystem::temp_directory_path() / ("kiln-quota-test-" + std::to_string(::getpid()));
    tools::WorkspaceOptions o;
    o.root_dir = root.string() + "/ws";
    o.size_bytes = 16ull << 20;
    o.max_files = 1000;
    o.owner_uid = (*rt)->capabilities().host_uid;
    o.owner_gid = (*rt)->capabilities().host_gid;
    o.runtime = rt->get();
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
