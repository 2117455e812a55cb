// The writer: record fields, code handling, durability modes, reopening,
// crash recovery, concurrency, file modes and fd flags.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "common/hash.hpp"
#include "security/audit/audit_log.hpp"
#include "security/audit/record.hpp"
#include "security/audit/seal.hpp"
#include "security/audit/verify.hpp"
#include "tests/audit/helpers.hpp"

namespace kiln::audit {
namespace {

using test::open_ok;
using test::TempDir;

bool chain_intact(const std::string& path, std::uint64_t expected_records) {
    auto r = verify_chain({path}, {});
    REQUIRE(r.ok());
    INFO("line " << r->line << ": " << r->problem);
    return r->intact && r->records == expected_records;
}

TEST_CASE("a record carries seq, ts, event, prev_hash, hash and the caller's fields") {
    TempDir dir;
    auto log = open_ok(test::config_in(dir));
    auto a = log->append("session_start", {{"session_id", "s1"}, {"client", {{"name", "c"}, {"version", "1"}}}});
    auto b = log->append("tool_call", {{"session_id", "s1"}, {"tool", "run_code"}});
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(a->seq == 1);
    CHECK(b->seq == 2);
    auto lines = test::read_lines(log->path());
    REQUIRE(lines.size() == 2);
    auto r1 = nlohmann::json::parse(lines[0]);
    auto r2 = nlohmann::json::parse(lines[1]);
    CHECK(r1["event"] == "session_start");
    CHECK(r1["client"]["name"] == "c");
    CHECK(r1["prev_hash"] == kGenesisHash);
    CHECK(r2["prev_hash"] == r1["hash"]);
    CHECK(a->id == "1-" + r1["hash"].get<std::string>().substr(0, 12));
    // RFC 3339, microseconds, UTC: 2026-11-23T08:51:17.123456Z
    std::string ts = r1["ts"];
    CHECK(ts.size() == 27);
    CHECK(ts[10] == 'T');
    CHECK(ts[19] == '.');
    CHECK(ts.back() == 'Z');
    auto parsed = parse_time(ts);
    REQUIRE(parsed.has_value());
    CHECK(format_rfc3339_us(*parsed) == ts);
}

TEST_CASE("the log refuses fields it owns and non-object fields") {
    TempDir dir;
    auto log = open_ok(test::config_in(dir));
    for (const char* key : {"seq", "ts", "prev_hash", "hash", "hmac", "event"}) {
        auto r = log->append("tool_call", {{key, "x"}});
        CHECK_FALSE(r.ok());
    }
    CHECK_FALSE(log->append("tool_call", nlohmann::json::array({1, 2})).ok());
    CHECK_FALSE(log->append("tool_call", {{"code", 42}}).ok());
    CHECK(log->healthy());  // a caller's mistake is not a log failure
    CHECK(log->append("tool_call", nullptr).ok());
    CHECK(test::read_lines(log->path()).size() == 1);
}

TEST_CASE("code is hashed, redacted and capped; the hash is of the original") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir);
    cfg.code_max_bytes = 64;
    auto log = open_ok(cfg);
    std::string code = "key = \"" + std::string("sk-") + "proj-" + std::string(40, 'A') + "\"\nprint('" +
                       std::string(200, 'z') + "')\n";
    REQUIRE(log->append("tool_call", {{"code", code}, {"language", "python"}}).ok());
    auto rec = nlohmann::json::parse(test::read_lines(log->path())[0]);
    CHECK(rec["code_sha256"] == sha256_hex(code));
    CHECK(rec["code_bytes"] == code.size());
    CHECK(rec["code_truncated"] == true);
    std::string kept = rec["code"];
    CHECK(kept.size() <= 64);
    CHECK(kept.find("AAAAAAAAAA") == std::string::npos);
    CHECK(kept.find("[REDACTED:openai_api_key]") != std::string::npos);
    CHECK(rec["code_redactions"][0]["kind"] == "openai_api_key");
    CHECK(rec["code_redactions"][0]["count"] == 1);
}

TEST_CASE("code_max_bytes = 0 keeps only the hash") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir);
    cfg.code_max_bytes = 0;
    auto log = open_ok(cfg);
    REQUIRE(log->append("tool_call", {{"code", "print(1)"}}).ok());
    auto rec = nlohmann::json::parse(test::read_lines(log->path())[0]);
    CHECK_FALSE(rec.contains("code"));
    CHECK(rec["code_sha256"] == sha256_hex("print(1)"));
}

TEST_CASE("with a seal key, code is sealed with AES-256-GCM bound to its seq") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir);
    cfg.seal_key_file = dir.file("seal.key");
    test::write_file(cfg.seal_key_file, std::string(64, 'a') + "\n");
    auto log = open_ok(cfg);
    REQUIRE(log->append("tool_call", {{"code", "print('sealed')"}}).ok());
    REQUIRE(log->append("tool_call", {{"code", "print('second')"}}).ok());
    auto lines = test::read_lines(log->path());
    CHECK(lines[0].find("sealed')") == std::string::npos);
    auto rec = nlohmann::json::parse(lines[0]);
    CHECK_FALSE(rec.contains("code"));
    auto key = load_seal_key(cfg.seal_key_file);
    REQUIRE(key.ok());
    auto plain = unseal(*key, rec["code_sealed"], seal_aad(1));
    REQUIRE(plain.ok());
    CHECK(*plain == "print('sealed')");
    // Moved to another record, or opened with another key, it does not open.
    CHECK_FALSE(unseal(*key, rec["code_sealed"], seal_aad(2)).ok());
    CHECK_FALSE(unseal(std::string(32, 'b'), rec["code_sealed"], seal_aad(1)).ok());
}

TEST_CASE("key files readable by others and short keys are refused") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir);
    cfg.hmac_key_file = dir.file("hmac.key");
    test::write_file(cfg.hmac_key_file, "0123456789abcdef0123456789abcdef", 0644);
    auto loose = AuditLog::open(cfg);
    REQUIRE_FALSE(loose.ok());
    CHECK(loose.error().message.find("chmod 600") != std::string::npos);
    test::write_file(cfg.hmac_key_file, "short", 0600);
    CHECK_FALSE(AuditLog::open(cfg).ok());
}

TEST_CASE("directory 0700, file 0600, fd O_CLOEXEC") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir);
    auto log = open_ok(cfg);
    struct stat st {};
    REQUIRE(::stat(cfg.path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    REQUIRE(::stat(dir.file("log").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    int flags = ::fcntl(log->fd(), F_GETFD);
    REQUIRE(flags >= 0);
    CHECK((flags & FD_CLOEXEC) != 0);
}

TEST_CASE("the log fd is not inherited across exec") {
    TempDir dir;
    auto log = open_ok(test::config_in(dir));
    std::string fd_path = "/proc/self/fd/" + std::to_string(log->fd());
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // The child's shell exits 0 only if the fd survived exec.
        ::execl("/bin/sh", "sh", "-c", ("test -e " + fd_path).c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 1);
}

TEST_CASE("reopening continues the chain, in every durability mode") {
    for (const char* mode : {"always", "batch", "never"}) {
        CAPTURE(mode);
        TempDir dir;
        AuditConfig cfg = test::config_in(dir, mode);
        for (int round = 0; round < 3; ++round) {
            auto log = open_ok(cfg);
            for (int i = 0; i < 5; ++i) REQUIRE(log->append("execution", {{"round", round}, {"i", i}}).ok());
        }
        CHECK(chain_intact(cfg.path, 15));
    }
}

TEST_CASE("always syncs each record of a sequential writer before append returns; batch syncs far less") {
    TempDir dir;
    {
        // One writer, one record at a time: no other record can share a
        // sync, so each append is exactly one fdatasync, done before it
        // returns. (Concurrent writers may share one: see "concurrent appenders".)
        auto log = open_ok(test::config_in(dir, "always"));
        for (int i = 0; i < 20; ++i) {
            const auto before = log->stats().syncs;
            REQUIRE(log->append("execution", {{"i", i}}).ok());
            CHECK_MESSAGE(log->stats().syncs == before + 1, "append " << i);
        }
        CHECK(log->stats().records == 20);
    }
    TempDir dir2;
    AuditConfig cfg = test::config_in(dir2, "batch");
    cfg.batch_records = 100;
    cfg.batch_interval = std::chrono::milliseconds(10'000);
    auto log = open_ok(cfg);
    for (int i = 0; i < 250; ++i) REQUIRE(log->append("execution", {{"i", i}}).ok());
    // 250 records with batches of 100 and a long interval: two full batches.
    CHECK(log->stats().syncs == 2);
}

TEST_CASE("batch mode syncs a partial batch after batch_interval") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir, "batch");
    cfg.batch_interval = std::chrono::milliseconds(5);
    auto log = open_ok(cfg);
    REQUIRE(log->append("execution", {}).ok());
    // Poll rather than assert a deadline: only that the flusher runs.
    for (int i = 0; i < 1000 && log->stats().syncs == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(log->stats().syncs >= 1);
}

TEST_CASE("concurrent appenders produce one consistent chain") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir, "always");
    std::vector<std::uint64_t> seqs[4];
    {
        auto log = open_ok(cfg);
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&, t] {
                for (int i = 0; i < 200; ++i) {
                    auto r = log->append("execution", {{"thread", t}, {"i", i}});
                    if (r.ok()) seqs[t].push_back(r->seq);
                }
            });
        for (auto& th : threads) th.join();
        CHECK(log->stats().syncs <= 800);
    }
    std::set<std::uint64_t> all;
    for (auto& v : seqs) all.insert(v.begin(), v.end());
    CHECK(all.size() == 800);
    CHECK(chain_intact(cfg.path, 800));
}

TEST_CASE("a torn last line is cut on reopen and recorded as a recovery event") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir);
    {
        auto log = open_ok(cfg);
        for (int i = 0; i < 3; ++i) REQUIRE(log->append("execution", {{"i", i}}).ok());
    }
    std::string torn = "{\"event\":\"execution\",\"i\":3,\"prev_ha";
    { std::ofstream(cfg.path, std::ios::app | std::ios::binary) << torn; }
    auto before = verify_chain({cfg.path}, {});
    REQUIRE(before.ok());
    CHECK_FALSE(before->intact);

    auto log = open_ok(cfg);
    REQUIRE(log->append("execution", {{"i", 4}}).ok());
    auto lines = test::read_lines(cfg.path);
    REQUIRE(lines.size() == 5);
    auto recovery = nlohmann::json::parse(lines[3]);
    CHECK(recovery["event"] == "recovery");
    CHECK(recovery["seq"] == 4);
    CHECK(recovery["torn_bytes"] == torn.size());
    CHECK(recovery["torn_sha256"] == sha256_hex(torn));
    CHECK(chain_intact(cfg.path, 5));
}

TEST_CASE("a corrupt last record stops open instead of starting a second chain") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir);
    {
        auto log = open_ok(cfg);
        REQUIRE(log->append("execution", {}).ok());
    }
    { std::ofstream(cfg.path, std::ios::app) << "not json\n"; }
    auto log = AuditLog::open(cfg);
    REQUIRE_FALSE(log.ok());
    CHECK(log.error().message.find("kiln audit verify") != std::string::npos);
}

TEST_CASE("after a rotation and restart, the chain continues from the rotated file") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir);
    cfg.rotate_bytes = 600;
    {
        auto log = open_ok(cfg);
        for (int i = 0; i < 6; ++i) REQUIRE(log->append("execution", {{"i", i}}).ok());
    }
    // Simulate a crash right after rotation: the active file is empty.
    test::write_file(cfg.path, "");
    {
        auto log = open_ok(cfg);
        REQUIRE(log->append("execution", {{"i", 99}}).ok());
    }
    auto files = std::vector<std::string>{};
    for (unsigned n = 1;; ++n) {
        std::string f = cfg.path + "." + std::to_string(n);
        if (!std::filesystem::exists(f)) break;
        files.push_back(f);
    }
    files.push_back(cfg.path);
    auto r = verify_chain(files, {});
    REQUIRE(r.ok());
    CHECK(r->intact);
}

}  // namespace
}  // namespace kiln::audit
