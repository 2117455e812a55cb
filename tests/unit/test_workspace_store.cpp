// Explicit workspaces (tools/workspace_store.hpp): handles bound to their
// principal, the shared store's lock between real processes (fork, real
// OFD locks), its quota, idle expiry, and crash clean-up that must not
// touch a live holder's work and must remove a dead one's.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/config.hpp"
#include "security/trust_store.hpp"
#include "tools/file_tools.hpp"
#include "tools/workspace_store.hpp"

using namespace kiln;
using namespace kiln::tools;
namespace fs = std::filesystem;

namespace {

struct StoreBench {
    std::string base;
    std::unique_ptr<WorkspaceManager> manager;
    std::unique_ptr<WorkspaceStore> store;
    SharedStoreOptions shared;

    explicit StoreBench(WorkspaceStoreKind kind, SharedStoreOptions options = {}) : shared(std::move(options)) {
        char tmpl[] = "/dev/shm/kiln-wss-XXXXXX";
        base = ::mkdtemp(tmpl);
        WorkspaceOptions o;
        o.root_dir = base + "/local/" + std::to_string(::getpid());
        o.size_bytes = 16ull << 20;
        o.owner_uid = ::geteuid();
        o.owner_gid = ::getegid();
        manager = std::make_unique<WorkspaceManager>(o);
        REQUIRE(manager->remove_leftovers().ok());
        shared.dir = base + "/shared/workspaces";
        if (shared.replica_id.empty()) shared.replica_id = "test-replica";
        if (shared.lock_wait.count() == 60'000) shared.lock_wait = std::chrono::milliseconds(300);
        store = std::make_unique<WorkspaceStore>(*manager, kind, shared);
        REQUIRE(store->prepare().ok());
    }
    ~StoreBench() {
        store.reset();
        manager.reset();
        fs::remove_all(base);
    }
    std::string dir_of(const std::string& handle) const { return shared.dir + "/" + handle; }

    Status write(const std::string& handle, const std::string& principal, const std::string& path, const std::string& text) {
        auto use = store->open("s1", principal, handle);
        if (!use) return use.error();
        if (Status st = wsfs::write_file(use->dir_fd(), path, text, use->owner()); !st) return st;
        return use->commit();
    }
    Result<std::string> read(const std::string& handle, const std::string& principal, const std::string& path) {
        auto use = store->open("s1", principal, handle);
        if (!use) return use.error();
        auto data = wsfs::read_file(use->dir_fd(), path, 1 << 20);
        if (!data) return data.error();
        return data->bytes;
    }
};

// A child process that holds the workspace's lock (as a replica in the
// middle of a call does) until killed; it reports on `ready` once it holds it.
pid_t hold_lock_in_child(const std::string& lock_path, const std::string& stray_tree) {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(ready[0]);
        auto lock = WorkspaceLock::acquire(lock_path, std::chrono::milliseconds(2000));
        if (!lock) ::_exit(3);
        // What a replica that dies mid-commit leaves: a tree it never published.
        if (!stray_tree.empty() && ::mkdir(stray_tree.c_str(), 0700) != 0) ::_exit(4);
        (void)!::write(ready[1], "x", 1);
        for (;;) ::pause();
    }
    ::close(ready[1]);
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);
    return pid;
}

void kill_and_reap(pid_t pid) {
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
}

}  // namespace

TEST_CASE("workspace handles: 128 random bits, bound to the principal, no oracle") {
    for (auto kind : {WorkspaceStoreKind::Local, WorkspaceStoreKind::Shared}) {
        CAPTURE(choice_name(kind));
        StoreBench b(kind);
        auto h = b.store->create("alice");
        REQUIRE(h.ok());
        CHECK(is_workspace_handle(*h));
        CHECK(*b.store->create("alice") != *h);
        REQUIRE(b.write(*h, "alice", "notes.txt", "hello").ok());
        CHECK(*b.read(*h, "alice", "notes.txt") == "hello");

        // Another principal gets exactly the answer of a handle that never
        // existed, so it learns nothing about alice's.
        std::string never = new_workspace_handle();
        auto theirs = b.store->open("s2", "mallory", *h);
        auto none = b.store->open("s2", "mallory", never);
        REQUIRE(!theirs.ok());
        REQUIRE(!none.ok());
        auto strip = [](std::string m, const std::string& handle) { return m.replace(m.find(handle), handle.size(), "H"); };
        CHECK(strip(theirs.error().what(), *h) == strip(none.error().what(), never));
        CHECK(!b.store->remove(*h, "mallory").ok());
        CHECK(*b.read(*h, "alice", "notes.txt") == "hello");

        REQUIRE(b.store->remove(*h, "alice").ok());
        CHECK(!b.store->open("s1", "alice", *h).ok());
        CHECK(!b.store->open("s1", "alice", "../../etc").ok());
    }
}

TEST_CASE("file tools take a workspace handle; without one a session keeps its own") {
    StoreBench b(WorkspaceStoreKind::Shared);
    Registry registry;
    register_file_tools(registry, *b.store);
    SessionInfo one{"session-one", "", "", "", false, "alice"};
    SessionInfo two{"session-two", "", "", "", false, "alice"};
    auto call = [&](const SessionInfo& s, const std::string& tool, const nlohmann::json& args) {
        CallContext ctx;
        ctx.session = &s;
        return registry.call(*registry.find(tool), args, ctx);
    };
    auto made = call(one, "workspace_create", nlohmann::json::object());
    REQUIRE(!made.is_error);
    std::string h = made.structured["workspace"];
    CHECK(made.structured["store"] == "shared");
    REQUIRE(!call(one, "write_file", {{"path", "a.txt"}, {"content", "from one"}, {"workspace", h}}).is_error);
    // Another session of the same principal sees it through the handle only.
    CHECK(call(two, "read_file", {{"path", "a.txt"}, {"workspace", h}}).text == "from one");
    CHECK(call(two, "read_file", {{"path", "a.txt"}}).is_error);
    auto bad = call(two, "read_file", {{"path", "a.txt"}, {"workspace", "xyz"}});
    CHECK(bad.is_error);
    CHECK(bad.text.find("workspace") != std::string::npos);
    REQUIRE(!call(one, "workspace_delete", {{"workspace", h}}).is_error);
    CHECK(call(two, "read_file", {{"path", "a.txt"}, {"workspace", h}}).is_error);
}

TEST_CASE("shared store: one call at a time per workspace, across processes") {
    StoreBench b(WorkspaceStoreKind::Shared);
    auto h = b.store->create("alice");
    REQUIRE(h.ok());
    pid_t holder = hold_lock_in_child(b.dir_of(*h) + "/lock", "");
    auto blocked = b.store->open("s1", "alice", *h);
    REQUIRE(!blocked.ok());
    CHECK(blocked.error().what().find("workspace.queue_wait") != std::string::npos);
    kill_and_reap(holder);
    // The kernel let the dead holder's lock go with its process.
    CHECK(b.store->open("s1", "alice", *h).ok());

    // And a lock held inside this process (another call) is honoured too:
    // OFD locks belong to the open file, not to the process.
    auto first = b.store->open("s1", "alice", *h);
    REQUIRE(first.ok());
    CHECK(!b.store->open("s2", "alice", *h).ok());
}

TEST_CASE("shared store: the quota counts bytes and files; over it nothing is saved") {
    SharedStoreOptions o;
    o.max_bytes = 1 << 20;
    o.max_inodes = 20;
    StoreBench b(WorkspaceStoreKind::Shared, o);
    auto h = b.store->create("alice");
    REQUIRE(h.ok());
    REQUIRE(b.write(*h, "alice", "keep.txt", "kept").ok());

    auto big = b.write(*h, "alice", "big.bin", std::string(1536 << 10, 'x'));
    REQUIRE(!big.ok());
    CHECK(big.error().what().find("workspace.size") != std::string::npos);
    CHECK(big.error().what().find("nothing was saved") != std::string::npos);

    {
        auto use = b.store->open("s1", "alice", *h);
        REQUIRE(use.ok());
        for (int i = 0; i < 25; ++i) REQUIRE(wsfs::write_file(use->dir_fd(), "f" + std::to_string(i), "", use->owner()).ok());
        auto many = use->commit();
        REQUIRE(!many.ok());
        CHECK(many.error().what().find("workspace.max_files") != std::string::npos);
    }
    // The workspace is what it was before both refused saves.
    CHECK(*b.read(*h, "alice", "keep.txt") == "kept");
    CHECK(!b.read(*h, "alice", "big.bin").ok());
    CHECK(!b.read(*h, "alice", "f0").ok());
    CHECK(fs::is_symlink(b.dir_of(*h) + "/current"));
}

TEST_CASE("shared store: idle workspaces expire, a workspace in use does not") {
    SharedStoreOptions o;
    o.idle_ttl = std::chrono::milliseconds(200);
    StoreBench b(WorkspaceStoreKind::Shared, o);
    auto idle = b.store->create("alice");
    auto busy = b.store->create("alice");
    REQUIRE((idle.ok() && busy.ok()));
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    pid_t holder = hold_lock_in_child(b.dir_of(*busy) + "/lock", "");
    CHECK(b.store->sweep() == 1);
    CHECK(!fs::exists(b.dir_of(*idle)));
    CHECK(!b.store->open("s1", "alice", *idle).ok());
    CHECK(fs::exists(b.dir_of(*busy) + "/current"));
    kill_and_reap(holder);
    CHECK(b.store->sweep() == 1);
    CHECK(!fs::exists(b.dir_of(*busy)));
}

TEST_CASE("shared store: crash clean-up leaves a live holder alone and removes a dead one's leftovers") {
    StoreBench b(WorkspaceStoreKind::Shared);
    auto h = b.store->create("alice");
    REQUIRE(h.ok());
    REQUIRE(b.write(*h, "alice", "data.txt", "published").ok());
    const std::string stray = b.dir_of(*h) + "/tree-99";

    // Another "replica" (a process of its own) holds the lock and is writing
    // a tree: the sweeper of this one must not touch it.
    pid_t holder = hold_lock_in_child(b.dir_of(*h) + "/lock", stray);
    b.store->sweep();
    CHECK(fs::exists(stray));

    // It dies (SIGKILL, as a replica in the test of the proxy does): its
    // lock is gone, and the next sweep removes what it left.
    kill_and_reap(holder);
    b.store->sweep();
    CHECK(!fs::exists(stray));
    CHECK(*b.read(*h, "alice", "data.txt") == "published");

    // A workspace that a dead replica was making or removing goes too; one
    // being made by a live replica stays.
    const std::string making = b.shared.dir + "/.new-" + new_workspace_handle();
    REQUIRE(fs::create_directory(making));
    pid_t maker = hold_lock_in_child(making + "/lock", "");
    b.store->sweep();
    CHECK(fs::exists(making));
    kill_and_reap(maker);
    b.store->sweep();
    CHECK(!fs::exists(making));
}

TEST_CASE("shared store: a replica's reused local copy never serves a stale tree") {
    StoreBench a(WorkspaceStoreKind::Shared);
    // A second replica: its own local workspaces, the same shared dir.
    WorkspaceOptions o;
    o.root_dir = a.base + "/local-b/" + std::to_string(::getpid());
    o.owner_uid = ::geteuid();
    o.owner_gid = ::getegid();
    WorkspaceManager manager_b(o);
    SharedStoreOptions shared_b = a.shared;
    shared_b.replica_id = "replica-b";
    WorkspaceStore b(manager_b, WorkspaceStoreKind::Shared, shared_b);
    auto read_b = [&](const std::string& handle) -> std::string {
        auto use = b.open("s9", "alice", handle, WorkspaceAccess::Read);
        REQUIRE(use.ok());
        auto data = wsfs::read_file(use->dir_fd(), "v.txt", 100);
        return data ? data->bytes : "(none)";
    };
    auto h = a.store->create("alice");
    REQUIRE(h.ok());
    REQUIRE(a.write(*h, "alice", "v.txt", "one").ok());
    CHECK(read_b(*h) == "one");
    CHECK(read_b(*h) == "one");  // from the reused copy
    REQUIRE(a.write(*h, "alice", "v.txt", "two").ok());
    CHECK(read_b(*h) == "two");  // another replica published: copied again
    {
        // A change that is never committed does not linger in the copy.
        auto use = b.open("s9", "alice", *h);
        REQUIRE(use.ok());
        REQUIRE(wsfs::write_file(use->dir_fd(), "v.txt", "uncommitted", use->owner()).ok());
    }
    CHECK(read_b(*h) == "two");
    CHECK(*a.read(*h, "alice", "v.txt") == "two");
}

TEST_CASE("replicas share one trust store in the shared dir; a counted approval is spent once across processes") {
    Config config;
    config.server.state_dir = "/var/lib/kiln-replica-1";
    CHECK(trust_store_path(config) == "/var/lib/kiln-replica-1/trust.json");
    config.workspace.store = WorkspaceStoreKind::Shared;
    config.workspace.shared_dir = "/mnt/kiln-shared";
    CHECK(trust_store_path(config) == "/mnt/kiln-shared/trust.json");

    StoreBench b(WorkspaceStoreKind::Shared);
    const std::string path = b.base + "/shared/trust.json";
    const std::string hash = security::code_fingerprint("print('approved once, five uses')");
    REQUIRE(security::TrustStore(path).add({hash, "five uses", 0, {}, 5u}).ok());
    // Three "replicas" (processes of their own) spend it at once; each
    // reports how many uses it got through a pipe.
    std::vector<std::pair<pid_t, int>> replicas;
    for (int r = 0; r < 3; ++r) {
        int out[2];
        REQUIRE(::pipe(out) == 0);
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::close(out[0]);
            security::TrustStore store(path);
            unsigned char used = 0;
            for (int i = 0; i < 10; ++i) {
                auto ok = store.consume(hash);
                if (!ok) ::_exit(2);
                if (*ok) ++used;
            }
            (void)!::write(out[1], &used, 1);
            ::_exit(0);
        }
        ::close(out[1]);
        replicas.emplace_back(pid, out[0]);
    }
    int total = 0;
    for (auto [pid, fd] : replicas) {
        unsigned char used = 0;
        CHECK(::read(fd, &used, 1) == 1);
        ::close(fd);
        int status = 0;
        ::waitpid(pid, &status, 0);
        CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
        total += used;
    }
    CHECK(total == 5);
}

TEST_CASE("config: server.replica_id, workspace.store and workspace.shared_dir") {
    Config c;
    REQUIRE(config_set(c, "server.replica_id", "kiln-0.east_1", "test").ok());
    CHECK(replica_id(c) == "kiln-0.east_1");
    config_finalize(c);
    CHECK(c.audit.path == c.server.state_dir + "/audit-kiln-0.east_1.jsonl");
    for (const char* bad : {"../x", "a b", ".hidden", "r/1"}) {
        Status st = config_set(c, "server.replica_id", bad, "test");
        REQUIRE(!st.ok());
        CHECK(st.error().what().find("server.replica_id") != std::string::npos);
        CHECK(st.error().what().find("up to 64 letters") != std::string::npos);
    }
    REQUIRE(config_set(c, "server.replica_id", "", "test").ok());  // the host name
    CHECK(!replica_id(c).empty());
    Status store = config_set(c, "workspace.store", "nfs", "test");
    REQUIRE(!store.ok());
    CHECK(store.error().what().find("local or shared") != std::string::npos);
    REQUIRE(config_set(c, "workspace.store", "shared", "test").ok());
    CHECK(c.workspace.store == WorkspaceStoreKind::Shared);
}
