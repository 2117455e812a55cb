// The workspace file primitives against trees and files a hostile run can
// build: chains deeper than any stack or descriptor table, names long
// enough to make paths quadratic, files held by a lease, and leftovers the
// server cannot delete. Each case drives the real kernel.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <thread>

#include <pthread.h>

#include "tools/file_tools.hpp"
#include "tools/registry.hpp"
#include "tools/workspace.hpp"
#include "tools/workspace_fs.hpp"

using namespace kiln;
using namespace kiln::tools;
namespace fs = std::filesystem;

namespace {

// A scratch directory on tmpfs (/dev/shm): deep chains cost no disk
// blocks there. Removed with the walker under test, since
// std::filesystem::remove_all itself recurses one descriptor per level.
struct DeepScratch {
    fs::path dir;
    UniqueFd fd;
    DeepScratch() {
        char tmpl[] = "/dev/shm/kiln-deep-XXXXXX";
        dir = ::mkdtemp(tmpl);
        fd.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    }
    ~DeepScratch() {
        if (wsfs::remove_contents(fd.get()).ok()) ::rmdir(dir.c_str());
    }
};

// Builds name/name/... `depth` levels below dir_fd, one descriptor at a time.
bool make_chain(int dir_fd, int depth, const std::string& name) {
    UniqueFd cur(::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0));
    for (int i = 0; i < depth; ++i) {
        if (::mkdirat(cur.get(), name.c_str(), 0755) != 0) return false;
        cur.reset(::openat(cur.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!cur) return false;
    }
    return ::close(::openat(cur.get(), "leaf", O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) == 0;
}

bool is_empty_dir(const fs::path& dir) { return fs::is_empty(dir); }

// Runs fn in a child process, on a thread of its own with a stack of
// `stack_bytes` and RLIMIT_NOFILE set to `nofile`; returns the wait status,
// so a stack overflow shows up as SIGSEGV instead of killing the test runner.
template <class F>
int run_in_child(rlim_t nofile, std::size_t stack_bytes, F fn) {
    pid_t pid = ::fork();
    if (pid == 0) {
        struct rlimit rl {nofile, nofile};
        if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::_exit(3);
        struct Job {
            F* fn;
            int rc = 2;
        } job{&fn};
        pthread_attr_t attr;
        ::pthread_attr_init(&attr);
        ::pthread_attr_setstacksize(&attr, stack_bytes);
        pthread_t worker;
        auto body = [](void* arg) -> void* {
            auto* j = static_cast<Job*>(arg);
            Status st = (*j->fn)();
            if (!st) std::fprintf(stderr, "child: %s\n", st.error().what().c_str());
            j->rc = st ? 0 : 1;
            return nullptr;
        };
        if (::pthread_create(&worker, &attr, body, &job) != 0) ::_exit(4);
        ::pthread_join(worker, nullptr);
        ::_exit(job.rc);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
}

std::string describe_status(int status) {
    if (WIFSIGNALED(status)) return std::string("killed by signal ") + ::strsignal(WTERMSIG(status));
    return "exit " + std::to_string(WEXITSTATUS(status));
}

}  // namespace

TEST_CASE("T003: remove_contents empties a 100,000-deep chain with 64 descriptors and a normal stack") {
    DeepScratch s;
    REQUIRE(make_chain(s.fd.get(), 100'000, "d"));
    int dir_fd = s.fd.get();
    int status = run_in_child(64, 8u << 20, [dir_fd] { return wsfs::remove_contents(dir_fd); });
    CHECK_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), describe_status(status));
    CHECK(is_empty_dir(s.dir));
}

TEST_CASE("T003: listing and deleting a 15,000-deep tree fit in a small thread stack") {
    // glibc's default 8 MiB thread stack happens to hold 15,000 levels of a
    // recursive walk with short names; the walk must not depend on that, so
    // it runs here on 256 KiB, which no per-level recursion survives.
    DeepScratch s;
    REQUIRE(::mkdirat(s.fd.get(), "top", 0755) == 0);
    UniqueFd top(::openat(s.fd.get(), "top", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(make_chain(top.get(), 15'000, "d"));
    int dir_fd = s.fd.get();
    // Descriptors are plentiful here: only the stack is under test.
    int status = run_in_child(20'000, 256u << 10, [dir_fd]() -> Status {
        // Paths grow with depth: 32 MiB of them reach about 5,000 levels.
        auto listing = wsfs::list(dir_fd, ".", true, {100'000, 32u << 20, SIZE_MAX});
        if (!listing) return listing.error();
        if (listing->entries.size() < 5'000)
            return make_error("list", "only " + std::to_string(listing->entries.size()) + " entries");
        return wsfs::remove(dir_fd, "top");
    });
    CHECK_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), describe_status(status));
    CHECK(is_empty_dir(s.dir));
}

TEST_CASE("T003: the remover stays beneath the workspace while a run moves directories") {
    // A racer keeps moving a subtree out of the workspace and back while
    // the workspace is emptied. The remover must never climb out through
    // '..' of a moved directory: the files beside the workspace survive.
    DeepScratch s;
    fs::create_directory(s.dir / "ws");
    fs::create_directory(s.dir / "outside");
    std::FILE* f = std::fopen((s.dir / "outside" / "keep").c_str(), "w");
    std::fclose(f);
    UniqueFd ws(::open((s.dir / "ws").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    for (int round = 0; round < 20; ++round) {
        REQUIRE(::mkdirat(ws.get(), "a", 0755) == 0);
        UniqueFd a(::openat(ws.get(), "a", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        REQUIRE(make_chain(a.get(), 200, "m"));
        std::atomic<bool> done = false;
        std::thread racer([&] {
            std::string inside = (s.dir / "ws" / "a" / "m" / "m").string();
            std::string out = (s.dir / "outside" / "m").string();
            while (!done) {
                if (::rename(inside.c_str(), out.c_str()) == 0) {
                    std::this_thread::yield();
                    (void)::rename(out.c_str(), inside.c_str());
                }
            }
        });
        Status st = wsfs::remove_contents(ws.get());
        done = true;
        racer.join();
        if (!st) CHECK_MESSAGE(st.error().what().find("kept changing") != std::string::npos, st.error().what());
        REQUIRE(fs::exists(s.dir / "outside" / "keep"));
        UniqueFd outside(::open((s.dir / "outside").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        (void)wsfs::remove(outside.get(), "m");
        (void)wsfs::remove_contents(ws.get());
    }
}

namespace {

// A workspace manager on a tmpfs (root) or a plain directory, with the file
// tools registered, for calling them as a client would.
struct ToolBench {
    std::string base;
    std::unique_ptr<WorkspaceManager> manager;
    std::unique_ptr<WorkspaceStore> store;
    Registry registry;
    SessionInfo session{"limits-session", "", "", "", false};
    ToolBench() {
        char tmpl[] = "/dev/shm/kiln-wst-XXXXXX";
        base = ::mkdtemp(tmpl);
        WorkspaceOptions o;
        o.root_dir = base + "/workspaces/" + std::to_string(::getpid());
        o.size_bytes = 64ull << 20;
        o.owner_uid = ::geteuid();
        o.owner_gid = ::getegid();
        manager = std::make_unique<WorkspaceManager>(o);
        REQUIRE(manager->remove_leftovers().ok());
        store = std::make_unique<WorkspaceStore>(*manager, WorkspaceStoreKind::Local, SharedStoreOptions{});
        register_file_tools(registry, *store);
    }
    ~ToolBench() {
        store.reset();
        manager.reset();
        fs::remove_all(base);
    }
    int workspace_fd() { return (*manager->acquire(session.id))->dir_fd(); }
    ToolResult call(const std::string& tool, const nlohmann::json& args) {
        CallContext ctx;
        ctx.session = &session;
        return registry.call(*registry.find(tool), args, ctx);
    }
};

}  // namespace

TEST_CASE("T003: list_files bounds its response in bytes on a 2,000-deep chain of 255-byte names") {
    ToolBench b;
    REQUIRE(make_chain(b.workspace_fd(), 2'000, std::string(255, 'n')));
    ToolResult r = b.call("list_files", {{"recursive", true}});
    REQUIRE_FALSE(r.is_error);
    std::size_t response = r.to_json().dump().size();
    CHECK_MESSAGE(response <= (1u << 20) + (64u << 10), "response of " << response << " bytes");
    CHECK(r.structured["truncated"] == true);
    CHECK(r.structured["truncated_reason"] == "bytes");
    CHECK(r.structured["entries"].size() > 10);
    CHECK_MESSAGE(r.text.find("MiB of response") != std::string::npos, r.text.substr(r.text.size() - 200));
}

TEST_CASE("T003: list_files stops descending at its depth bound and says so") {
    ToolBench b;
    REQUIRE(make_chain(b.workspace_fd(), 1'000, "d"));
    ToolResult r = b.call("list_files", {{"recursive", true}});
    REQUIRE_FALSE(r.is_error);
    CHECK(r.structured["truncated"] == true);
    CHECK(r.structured["truncated_reason"] == "depth");
    CHECK(r.structured["entries"].size() == wsfs::kMaxListDepth);
    CHECK(r.text.find(std::to_string(wsfs::kMaxListDepth) + " levels") != std::string::npos);
    // A listing that fits says it is complete.
    ToolResult small = b.call("list_files", {{"path", "d/d"}});
    CHECK(small.structured["truncated"] == false);
    CHECK_FALSE(small.structured.contains("truncated_reason"));
    CHECK(small.structured["entries"].size() == 1);
}

namespace {

// A child process that takes a lease on `path` (F_RDLCK or F_WRLCK) and
// ignores the kernel's request to give it up, as a hostile run would.
struct LeaseHolder {
    pid_t pid = -1;
    explicit LeaseHolder(const fs::path& path, int type) {
        int ready[2];
        REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
        pid = ::fork();
        if (pid == 0) {
            ::signal(SIGIO, SIG_IGN);
            int fd = ::open(path.c_str(), type == F_RDLCK ? O_RDONLY : O_RDWR);
            char ok = fd >= 0 && ::fcntl(fd, F_SETLEASE, type) == 0 ? 'y' : 'n';
            (void)::write(ready[1], &ok, 1);
            for (;;) ::pause();
        }
        ::close(ready[1]);
        char ok = 'n';
        (void)::read(ready[0], &ok, 1);
        ::close(ready[0]);
        REQUIRE_MESSAGE(ok == 'y', "the child could not take a lease on " << path);
    }
    ~LeaseHolder() {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
};

double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Runs op, checks it failed within a bounded time without spinning, and
// that the error names the file and the lease.
template <class F>
void expect_lease_error(F op, const std::string& path) {
    auto start = std::chrono::steady_clock::now();
    double cpu_start = thread_cpu_seconds();
    Status st = op();
    double cpu = thread_cpu_seconds() - cpu_start;
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    REQUIRE_FALSE(st.ok());
    CHECK(wall < 2.0);
    CHECK_MESSAGE(cpu < 0.2, "spent " << cpu << " s of CPU waiting");
    CHECK_MESSAGE(st.error().what().find("'" + path + "'") != std::string::npos, st.error().what());
    CHECK_MESSAGE(st.error().what().find("lease") != std::string::npos, st.error().what());
}

}  // namespace

TEST_CASE("T003: a file held by a lease fails write_file and read_file quickly, without spinning") {
    DeepScratch s;
    REQUIRE(wsfs::write_file(s.fd.get(), "leased.txt", "data", {}).ok());
    int fd = s.fd.get();
    {
        LeaseHolder reader(s.dir / "leased.txt", F_RDLCK);
        expect_lease_error([fd] { return wsfs::write_file(fd, "leased.txt", "new", {}); }, "leased.txt");
    }
    {
        LeaseHolder writer(s.dir / "leased.txt", F_WRLCK);
        expect_lease_error([fd]() -> Status {
            auto r = wsfs::read_file(fd, "leased.txt", 100);
            if (!r) return r.error();
            return {};
        }, "leased.txt");
    }
    // Once the holder is gone the file is usable again.
    REQUIRE(wsfs::write_file(fd, "leased.txt", "new", {}).ok());
    CHECK(wsfs::read_file(fd, "leased.txt", 100)->bytes == "new");
}

TEST_CASE("start-up moves aside a leftover it cannot remove and carries on") {
    char tmpl[] = "/tmp/kiln-wss-XXXXXX";
    fs::path top = ::mkdtemp(tmpl);
    fs::path base = top / "workspaces";
    fs::path stuck = base / "4194305" / "old-session" / "stuck";
    fs::create_directories(stuck.parent_path());
    std::FILE* f = std::fopen(stuck.c_str(), "w");
    std::fclose(f);
    // An immutable file (chattr +i) cannot be unlinked, even by root.
    int fd = ::open(stuck.c_str(), O_RDONLY | O_CLOEXEC);
    int flags = FS_IMMUTABLE_FL;
    bool immutable = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
    ::close(fd);
    if (!immutable) {
        MESSAGE("cannot set FS_IMMUTABLE_FL here (needs CAP_LINUX_IMMUTABLE): skipped");
        fs::remove_all(top);
        return;
    }
    WorkspaceOptions o;
    o.root_dir = (base / std::to_string(::getpid())).string();
    {
        WorkspaceManager m(o);
        Status st = m.remove_leftovers();
        CHECK_MESSAGE(st.ok(), (st ? "" : st.error().what()));
        CHECK(fs::exists(o.root_dir));
        CHECK_FALSE(fs::exists(base / "4194305"));
        std::vector<std::string> aside;
        for (const auto& e : fs::directory_iterator(base))
            if (e.path().filename().string().rfind("4194305.stale-", 0) == 0) aside.push_back(e.path().filename());
        REQUIRE(aside.size() == 1);
        // The next start tries again, and leaves it where it is.
        WorkspaceManager again(o);
        CHECK(again.remove_leftovers().ok());
        CHECK(fs::exists(base / aside[0] / "old-session" / "stuck"));
        fd = ::open((base / aside[0] / "old-session" / "stuck").c_str(), O_RDONLY | O_CLOEXEC);
        flags = 0;
        ::ioctl(fd, FS_IOC_SETFLAGS, &flags);
        ::close(fd);
    }
    fs::remove_all(top);
}
