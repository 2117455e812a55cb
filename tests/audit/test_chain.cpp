// Tamper evidence: each kind of edit the issue names must break the chain
// at the right line, and an intact log must verify.
#include <doctest/doctest.h>

#include "security/audit/audit_log.hpp"
#include "security/audit/files.hpp"
#include "security/audit/record.hpp"
#include "security/audit/verify.hpp"
#include "tests/audit/helpers.hpp"

namespace kiln::audit {
namespace {

using test::TempDir;

std::string make_log(const TempDir& dir, int records, const std::string& hmac_key_file = {}) {
    AuditConfig cfg = test::config_in(dir, "never");
    cfg.hmac_key_file = hmac_key_file;
    auto log = AuditLog::open(cfg);
    REQUIRE_MESSAGE(log.ok(), (log.ok() ? "" : log.error().what()));
    for (int i = 0; i < records; ++i) {
        auto ref = (*log)->append("tool_call", {{"session_id", "s1"}, {"tool", "run_code"}, {"n", i}});
        REQUIRE(ref.ok());
    }
    return cfg.path;
}

VerifyResult verify(const std::string& path, const std::string& key = {}, bool partial = false) {
    VerifyOptions options;
    options.hmac_key = key;
    options.allow_partial = partial;
    auto r = verify_chain({path}, options);
    REQUIRE(r.ok());
    return *r;
}

// Rewrites every record from `from` on so its hash chain is consistent
// again: what an attacker who can write the file but lacks the HMAC key can
// do after editing a record.
void rechain(std::vector<std::string>& lines, std::size_t from) {
    std::string prev = kGenesisHash;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        auto rec = nlohmann::json::parse(lines[i]);
        if (i >= from) {
            rec["seq"] = i + 1;
            rec["prev_hash"] = prev;
            rec.erase("hmac");
            rec["hash"] = chain_hash(prev, canonical_bytes(rec));
            lines[i] = dump_record(rec);
        }
        prev = rec["hash"].get<std::string>();
    }
}

TEST_CASE("an intact log verifies and counts its records") {
    TempDir dir;
    auto path = make_log(dir, 10);
    VerifyResult r = verify(path);
    CHECK(r.intact);
    CHECK(r.records == 10);
    CHECK(r.first_seq == 1);
    CHECK(r.last_seq == 10);
}

TEST_CASE("every single changed byte in a record is caught at that record") {
    TempDir dir;
    auto path = make_log(dir, 5);
    auto lines = test::read_lines(path);
    const std::string original = lines[2];
    for (std::size_t pos = 0; pos < original.size(); ++pos) {
        lines[2] = original;
        lines[2][pos] = original[pos] == 'x' ? 'y' : 'x';
        test::write_lines(path, lines);
        VerifyResult r = verify(path);
        CHECK_MESSAGE(!r.intact, "byte " << pos << " of line 3 changed unnoticed");
        CHECK_MESSAGE(r.line == 3, "byte " << pos << ": reported line " << r.line);
    }
}

TEST_CASE("a changed value is a hash mismatch naming seq and line") {
    TempDir dir;
    auto path = make_log(dir, 5);
    auto lines = test::read_lines(path);
    auto pos = lines[3].find("\"n\":3");
    REQUIRE(pos != std::string::npos);
    lines[3].replace(pos, 5, "\"n\":7");
    test::write_lines(path, lines);
    VerifyResult r = verify(path);
    CHECK_FALSE(r.intact);
    CHECK(r.line == 4);
    CHECK(r.seq == 4);
    CHECK(r.problem.find("hash mismatch") != std::string::npos);
}

TEST_CASE("a deleted record is caught") {
    TempDir dir;
    auto path = make_log(dir, 6);
    auto lines = test::read_lines(path);
    lines.erase(lines.begin() + 2);
    test::write_lines(path, lines);
    VerifyResult r = verify(path);
    CHECK_FALSE(r.intact);
    CHECK(r.line == 3);
    CHECK(r.problem.find("seq 4 follows seq 2") != std::string::npos);
}

TEST_CASE("two swapped records are caught") {
    TempDir dir;
    auto path = make_log(dir, 6);
    auto lines = test::read_lines(path);
    std::swap(lines[3], lines[4]);
    test::write_lines(path, lines);
    VerifyResult r = verify(path);
    CHECK_FALSE(r.intact);
    CHECK(r.line == 4);
}

TEST_CASE("a truncated file is caught") {
    TempDir dir;
    auto path = make_log(dir, 6);
    std::string text = test::read_file(path);
    SUBCASE("cut inside the last record") {
        test::write_file(path, text.substr(0, text.size() - 20));
        VerifyResult r = verify(path);
        CHECK_FALSE(r.intact);
        CHECK(r.line == 6);
        CHECK(r.problem.find("cut short") != std::string::npos);
    }
    SUBCASE("cut at the front: the first records are missing") {
        test::write_file(path, text.substr(text.find('\n') + 1));
        VerifyResult r = verify(path);
        CHECK_FALSE(r.intact);
        CHECK(r.problem.find("starts at seq 2") != std::string::npos);
        CHECK(verify(path, {}, true).intact);  // --partial accepts it, with a note
    }
}

TEST_CASE("a duplicated key that would hide an edit from some readers is caught") {
    TempDir dir;
    auto path = make_log(dir, 3);
    auto lines = test::read_lines(path);
    lines[1].insert(1, "\"tool\":\"forged\",");
    test::write_lines(path, lines);
    VerifyResult r = verify(path);
    CHECK_FALSE(r.intact);
    CHECK(r.line == 2);
}

TEST_CASE("with an HMAC key, an inserted forged record with a recomputed chain is caught") {
    TempDir dir;
    std::string key_file = dir.file("hmac.key");
    test::write_file(key_file, "0123456789abcdef0123456789abcdef\n");
    auto path = make_log(dir, 6, key_file);
    auto key = load_hmac_key(key_file);
    REQUIRE(key.ok());
    CHECK(verify(path, *key).intact);

    auto lines = test::read_lines(path);
    auto forged = nlohmann::json::parse(lines[2]);
    forged["tool"] = "run_command";
    forged["decision"] = "allow";
    lines.insert(lines.begin() + 3, dump_record(forged));
    rechain(lines, 3);
    test::write_lines(path, lines);

    // The hash chain alone cannot tell: the forger recomputed it.
    CHECK(verify(path).intact);
    VerifyResult r = verify(path, *key);
    CHECK_FALSE(r.intact);
    CHECK(r.line == 4);
    CHECK(r.problem.find("no hmac") != std::string::npos);

    SUBCASE("a forger who keeps a stale hmac field is caught by the HMAC mismatch") {
        auto stale = nlohmann::json::parse(lines[3]);
        stale["hmac"] = nlohmann::json::parse(lines[2])["hmac"];
        stale["hash"] = chain_hash(stale["prev_hash"].get<std::string>(), canonical_bytes(stale));
        lines[3] = dump_record(stale);
        rechain(lines, 4);
        test::write_lines(path, lines);
        VerifyResult r2 = verify(path, *key);
        CHECK_FALSE(r2.intact);
        CHECK(r2.line == 4);
        CHECK(r2.problem.find("HMAC mismatch") != std::string::npos);
    }
}

TEST_CASE("verification with the wrong HMAC key fails at the first record") {
    TempDir dir;
    std::string key_file = dir.file("hmac.key");
    test::write_file(key_file, "0123456789abcdef0123456789abcdef");
    auto path = make_log(dir, 3, key_file);
    VerifyResult r = verify(path, "another key, another key, another");
    CHECK_FALSE(r.intact);
    CHECK(r.line == 1);
}

TEST_CASE("the chain continues across rotated files") {
    TempDir dir;
    AuditConfig cfg = test::config_in(dir, "batch");
    cfg.rotate_bytes = 2000;
    {
        auto log = AuditLog::open(cfg);
        REQUIRE(log.ok());
        for (int i = 0; i < 60; ++i) REQUIRE((*log)->append("execution", {{"n", i}, {"pad", std::string(100, 'p')}}).ok());
    }
    auto files = chain_files(cfg.path);
    REQUIRE(files.size() >= 3);
    CHECK(files.front() == cfg.path + ".1");
    CHECK(files.back() == cfg.path);
    for (const auto& f : files) CHECK(test::read_file(f).size() <= cfg.rotate_bytes);

    auto r = verify_chain(files, {});
    REQUIRE(r.ok());
    CHECK(r->intact);
    CHECK(r->records == 60);

    // The first record of each new file carries the last hash of the old one.
    for (std::size_t i = 1; i < files.size(); ++i) {
        auto last_old = nlohmann::json::parse(test::read_lines(files[i - 1]).back());
        auto first_new = nlohmann::json::parse(test::read_lines(files[i]).front());
        CHECK(first_new["prev_hash"] == last_old["hash"]);
        CHECK(first_new["seq"].get<std::uint64_t>() == last_old["seq"].get<std::uint64_t>() + 1);
    }

    // A missing middle file breaks the chain.
    std::vector<std::string> gap = files;
    gap.erase(gap.begin() + 1);
    auto broken = verify_chain(gap, {});
    REQUIRE(broken.ok());
    CHECK_FALSE(broken->intact);
    CHECK(broken->line == 1);
    CHECK(broken->file == gap[1]);
}

}  // namespace
}  // namespace kiln::audit
