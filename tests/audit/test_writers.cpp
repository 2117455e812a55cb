// Several writers on one chain: each AuditLog opens its own file description,
// so two instances in one process contend for the flock exactly as two
// processes do. The multi-process version (with rotation and a kill -9)
// is writers_test.py.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>

#include "common/unique_fd.hpp"
#include "security/audit/audit_log.hpp"
#include "security/audit/files.hpp"
#include "security/audit/verify.hpp"
#include "tests/audit/helpers.hpp"

namespace kiln::audit {
namespace {

using test::open_ok;
using test::TempDir;

VerifyResult verify_all(const std::string& path) {
    auto r = verify_chain(chain_files(path), {});
    REQUIRE(r.ok());
    INFO(r->file << " line " << r->line << ": " << r->problem);
    CHECK(r->intact);
    return *r;
}

TEST_CASE("two writers on one file continue each other's chain, in every durability mode") {
    for (const char* mode : {"always", "batch", "never"}) {
        CAPTURE(mode);
        TempDir dir;
        AuditConfig cfg = test::config_in(dir, mode);
        std::vector<std::uint64_t> seqs;
        {
            auto a = open_ok(cfg);
            auto b = open_ok(cfg);
            for (int i = 0; i < 10; ++i) {
                AuditLog& log = i % 3 == 0 ? *b : *a;
                auto r = log.append("execution", {{"i", i}});
                REQUIRE(r.ok());
                seqs.push_back(r->seq);
            }
            CHECK(a->healthy());
            CHECK(b->healthy());
        }
        std::vector<std::uint64_t> expected(10);
        for (std::uint64_t i = 0; i < 10; ++i) expected[i] = i + 1;
        CHECK(seqs == expected);
        CHECK(verify_all(cfg.path).records == 10);
        // A third writer opened later starts from the head the others left.
        auto c = open_ok(cfg);
        auto r = c->append("execution", {});
        REQUIRE(r.ok());
        CHECK(r->seq == 11);
    }
}

TEST_CASE("concurrent threads in two writers produce one chain with unique seqs") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir, "always");
    std::vector<std::uint64_t> seqs[4];
    {
        auto a = open_ok(cfg);
        auto b = open_ok(cfg);
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&, t] {
                AuditLog& log = t % 2 ? *a : *b;
                for (int i = 0; i < 100; ++i) {
                    auto r = log.append("execution", {{"thread", t}, {"i", i}});
                    if (r.ok()) seqs[t].push_back(r->seq);
                }
            });
        for (auto& th : threads) th.join();
        // Each writer syncs at most once per record of its own.
        CHECK(a->stats().syncs <= 200);
        CHECK(b->stats().syncs <= 200);
    }
    std::set<std::uint64_t> all;
    for (auto& v : seqs) all.insert(v.begin(), v.end());
    CHECK(all.size() == 400);
    CHECK(*all.begin() == 1);
    CHECK(*all.rbegin() == 400);
    CHECK(verify_all(cfg.path).records == 400);
}

TEST_CASE("the lock is held only while a record is written") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir);
    auto log = open_ok(cfg);
    REQUIRE(log->append("execution", {}).ok());
    UniqueFd other(::open(cfg.path.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(other);
    // Between appends nobody holds it.
    REQUIRE(::flock(other.get(), LOCK_EX | LOCK_NB) == 0);
    // While someone else holds it, an append waits for it.
    std::atomic<bool> done{false};
    std::thread appender([&] {
        CHECK(log->append("execution", {{"waited", true}}).ok());
        done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    CHECK_FALSE(done.load());
    REQUIRE(::flock(other.get(), LOCK_UN) == 0);
    appender.join();
    CHECK(done.load());
    CHECK(verify_all(cfg.path).records == 2);
}

TEST_CASE("rotation with two writers keeps one chain across the files") {
    for (const char* mode : {"always", "never"}) {
        CAPTURE(mode);
        TempDir dir;
        AuditConfig cfg = test::config_in(dir, mode);
        cfg.rotate_bytes = 4000;
        std::vector<std::uint64_t> seqs[2];
        {
            auto a = open_ok(cfg);
            auto b = open_ok(cfg);
            std::vector<std::thread> threads;
            for (int t = 0; t < 2; ++t)
                threads.emplace_back([&, t] {
                    AuditLog& log = t ? *a : *b;
                    for (int i = 0; i < 150; ++i) {
                        auto r = log.append("execution", {{"writer", t}, {"i", i}, {"output", std::string(100, 'o')}});
                        CHECK(r.ok());
                        if (!r.ok()) return;
                        seqs[t].push_back(r->seq);
                    }
                });
            for (auto& th : threads) th.join();
        }
        std::set<std::uint64_t> all;
        for (auto& v : seqs) all.insert(v.begin(), v.end());
        CHECK(all.size() == 300);
        CHECK(rotated_files(cfg.path).size() >= 10);
        CHECK(verify_all(cfg.path).records == 300);
        // No rotated file went past the limit: each rotation was decided
        // on the size the file really had, not on one writer's view of it.
        for (const auto& f : rotated_files(cfg.path)) CHECK(std::filesystem::file_size(f) <= cfg.rotate_bytes);
    }
}

TEST_CASE("a writer moves to the new file when another one rotated") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir);
    cfg.rotate_bytes = 1000;
    auto a = open_ok(cfg);
    auto b = open_ok(cfg);
    REQUIRE(b->append("execution", {{"by", "b"}}).ok());
    int old_fd_of_b = b->fd();
    // a fills the file until it rotates; b has not written since.
    while (rotated_files(cfg.path).empty()) REQUIRE(a->append("execution", {{"by", "a"}}).ok());
    auto before = test::read_lines(cfg.path).size();
    auto r = b->append("execution", {{"by", "b"}});
    REQUIRE(r.ok());
    CHECK(test::read_lines(cfg.path).size() == before + 1);  // into the new active file
    CHECK(b->fd() != old_fd_of_b);
    CHECK(verify_all(cfg.path).records == r->seq);
}

TEST_CASE("a torn line left by a writer that died is cut by the next writer and recorded") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir);
    auto log = open_ok(cfg);
    REQUIRE(log->append("execution", {{"i", 0}}).ok());
    // Another process died in the middle of its write.
    std::string torn = "{\"event\":\"execution\",\"i\":1,\"prev_ha";
    { std::ofstream(cfg.path, std::ios::app | std::ios::binary) << torn; }
    auto r = log->append("execution", {{"i", 2}});
    REQUIRE(r.ok());
    CHECK(r->seq == 3);
    auto lines = test::read_lines(cfg.path);
    REQUIRE(lines.size() == 3);
    auto recovery = nlohmann::json::parse(lines[1]);
    CHECK(recovery["event"] == "recovery");
    CHECK(recovery["seq"] == 2);
    CHECK(recovery["torn_bytes"] == torn.size());
    CHECK(verify_all(cfg.path).records == 3);
}

TEST_CASE("a last line another writer left unreadable fails the append closed") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir);
    auto log = open_ok(cfg);
    REQUIRE(log->append("execution", {}).ok());
    { std::ofstream(cfg.path, std::ios::app) << "not json\n"; }
    auto r = log->append("execution", {});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("kiln audit verify") != std::string::npos);
    CHECK_FALSE(log->healthy());
}

TEST_CASE("seq stays monotonic when the file is removed under a writer") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir);
    auto log = open_ok(cfg);
    for (int i = 0; i < 3; ++i) REQUIRE(log->append("execution", {}).ok());
    std::filesystem::remove(cfg.path);
    auto r = log->append("execution", {});
    REQUIRE(r.ok());
    CHECK(r->seq == 4);
    VerifyOptions partial;
    partial.allow_partial = true;
    auto v = verify_chain({cfg.path}, partial);
    REQUIRE(v.ok());
    CHECK(v->first_seq == 4);
}

}  // namespace
}  // namespace kiln::audit
