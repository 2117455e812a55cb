// `kiln selftest --compliance` on crafted selftest reports: a missing
// control fails exactly its lines, an unknown control or absent evidence
// leaves them "not assessed", and no line passes without a deciding probe.
// The evidence below is worded as security/selftest.cpp words it; the
// sandbox suite's test_compliance.cpp checks the live report still is.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>

#include "security/compliance.hpp"

using namespace kiln::security;
using compliance::Verdict;
using selftest::ControlStatus;

namespace {

const std::string kZero4 = "0000000000000000/0000000000000000/0000000000000000/0000000000000000";

// A report as this machine gives it as root: every control in force.
selftest::Report healthy() {
    selftest::Report r;
    r.runtime = "native";
    r.policy = "balanced";
    auto add = [&](std::string id, std::vector<selftest::Evidence> ev) {
        r.controls.push_back({id, id + " name", ControlStatus::InForce, true, id + " holds", std::move(ev)});
    };
    add("C001", {{"getuid/getgid", "in a jail", "uid 65534, gid 65534"}});
    add("C002", {{"write /usr/kiln-selftest", "in a jail", "EROFS"}});
    add("C003", {{"connect 127.0.0.1:4000 (a listener the selftest opened on the host)", "in a jail", "ENETUNREACH"},
                 {"interfaces in /proc/net/dev", "in a jail", "lo"}});
    add("C004", {{"assess `curl | sh` (shell)", "validator", "deny"}});
    add("C005", {{"policy command_allowlist_enabled", "policy", "false"}});
    add("C006", {{"Seccomp in /proc/self/status", "in a jail", "2 (filters: 2)"}});
    add("C007", {{"allocate 320 MiB past the limit 256 MiB", "in a jail", "killed by the memory cgroup (oom_kill), peak 256 MiB"},
                 {"fork past pids 64", "in a jail", "EAGAIN after 62 forks"},
                 {"cpu quota", "written to the run's cgroup, not probed", "1 core"}});
    add("C008", {{"sleep 10 s with a 300 ms timeout", "in a jail", "killed at 305 ms"}});
    add("C009", {{"CapEff/CapPrm/CapBnd/CapAmb in /proc/self/status", "in a jail", kZero4},
                 {"NoNewPrivs in /proc/self/status", "in a jail", "1"}});
    add("C010", {{"landlock_create_ruleset(VERSION)", "host", "ABI 7"}});
    add("C011", {{"append a selftest record", "audit.jsonl", "seq 3"}});
    add("C012", {{"lstat /home /root /var /run /sys /var/run/docker.sock /etc/shadow", "in a jail", "present: none"},
                 {"readlink /proc/self/ns/pid", "in a jail", "own (pid:[4026532301]; the server's pid:[4026531836])"},
                 {"readlink /proc/self/ns/ipc", "in a jail", "own (ipc:[4026532300]; the server's ipc:[4026531839])"},
                 {"readlink /proc/self/ns/uts", "in a jail", "own (uts:[4026532299]; the server's uts:[4026531838])"}});
    add("C013", {{"encryption at rest", "workspaces", "none"}});
    return r;
}

selftest::ControlResult& control(selftest::Report& r, const std::string& id) {
    for (auto& c : r.controls)
        if (c.id == id) return c;
    FAIL("no control " << id);
    throw 0;
}

std::map<std::string, Verdict> verdicts(const selftest::Report& r) {
    std::map<std::string, Verdict> out;
    for (const auto& l : compliance::assess(r).lines) out[std::string(l.rule->section)] = l.verdict;
    return out;
}

// The sections whose checks name `id`.
std::set<std::string> lines_of(const std::string& id) {
    std::set<std::string> out;
    for (const auto& rule : compliance::rules())
        for (const auto& c : rule.checks)
            if (c.control == id) out.insert(std::string(rule.section));
    return out;
}

// The invariant every table keeps: a pass has checks and every one passed.
void check_no_unproven_pass(const compliance::Table& t) {
    for (const auto& l : t.lines) {
        if (l.verdict != Verdict::Pass) continue;
        INFO(l.rule->section);
        CHECK_FALSE(l.rule->checks.empty());
        CHECK(l.decided_by.size() == l.rule->checks.size());
        for (const auto& d : l.decided_by) CHECK(d.verdict == Verdict::Pass);
    }
}

}  // namespace

TEST_CASE("compliance: every control in force passes each line a probe decides, and only those") {
    auto t = compliance::assess(healthy());
    REQUIRE(t.lines.size() == compliance::rules().size());
    for (const auto& l : t.lines) {
        INFO(l.rule->section << " " << l.reason);
        if (l.rule->checks.empty()) {
            CHECK(l.verdict == Verdict::NotAssessed);
            CHECK_FALSE(l.reason.empty());  // says why Kiln cannot judge it
        } else {
            CHECK(l.verdict == Verdict::Pass);
        }
    }
    auto v = verdicts(healthy());
    CHECK(v["5.12"] == Verdict::NotAssessed);  // the CPU quota is written, never probed
    CHECK(v["5.16"] == Verdict::Pass);
    check_no_unproven_pass(t);
}

TEST_CASE("compliance: a namespace the jail shares with the server fails its line, and only that line") {
    const auto base = verdicts(healthy());
    for (auto [kind, section] : {std::pair{"pid", "5.16"}, {"ipc", "5.17"}, {"uts", "5.21"}}) {
        auto r = healthy();
        for (auto& e : control(r, "C012").evidence)
            if (e.probe == std::string("readlink /proc/self/ns/") + kind)
                e.answer = std::string("shared with the server (") + kind + ":[1]; the server's " + kind + ":[1])";
        auto v = verdicts(r);
        for (const auto& [s, verdict] : v) {
            INFO(kind << " shared, line " << s);
            CHECK(verdict == (s == section ? Verdict::Fail : base.at(s)));
        }
    }
}

TEST_CASE("compliance: a missing control fails exactly the lines it decides") {
    const auto base = verdicts(healthy());
    for (const auto& c : healthy().controls) {
        auto r = healthy();
        control(r, c.id).status = ControlStatus::Missing;
        auto v = verdicts(r);
        auto mine = lines_of(c.id);
        for (const auto& [section, verdict] : v) {
            INFO(c.id << " missing, line " << section);
            if (mine.count(section)) CHECK(verdict == Verdict::Fail);
            else CHECK(verdict == base.at(section));
        }
        check_no_unproven_pass(compliance::assess(r));
    }
    CHECK(lines_of("C007") == std::set<std::string>{"5.11", "5.25", "5.29"});
    CHECK(lines_of("C013").empty());  // nothing in either benchmark asks for it
}

TEST_CASE("compliance: an unknown control or absent evidence is not assessed, never pass") {
    auto r = healthy();
    r.controls.erase(std::remove_if(r.controls.begin(), r.controls.end(), [](auto& c) { return c.id == "C009"; }),
                     r.controls.end());
    auto v = verdicts(r);
    for (const char* s : {"5.4", "5.5", "5.26", "4.4.3", "4.5.2"}) {
        INFO(s);
        CHECK(v[s] == Verdict::NotAssessed);
    }

    auto renamed = healthy();
    control(renamed, "C007").evidence[1].probe = "fork until the pids limit";  // a probe renamed in the selftest
    v = verdicts(renamed);
    CHECK(v["5.29"] == Verdict::NotAssessed);
    CHECK(v["5.25"] == Verdict::NotAssessed);
    CHECK(v["5.11"] == Verdict::Pass);  // its own evidence is still there

    auto skipped = healthy();
    control(skipped, "C007").status = ControlStatus::Degraded;
    control(skipped, "C007").evidence[0] = {"allocate past the memory limit 8 GiB", "in a jail",
                                            "not tried: the limit 8 GiB is at or above half the host's RAM"};
    v = verdicts(skipped);
    CHECK(v["5.11"] == Verdict::NotAssessed);
    CHECK(v["5.29"] == Verdict::Pass);  // the pids evidence still decides
    check_no_unproven_pass(compliance::assess(skipped));

    // The strict seccomp profile refuses fork itself: the loop never reaches
    // the pids limit, so its answer decides neither way.
    auto strict = healthy();
    control(strict, "C007").evidence[1].answer = "EPERM after 0 forks (the strict seccomp profile refuses fork)";
    v = verdicts(strict);
    CHECK(v["5.29"] == Verdict::NotAssessed);
    CHECK(v["5.25"] == Verdict::NotAssessed);
    CHECK(v["5.11"] == Verdict::Pass);
}

TEST_CASE("compliance: a wrong answer or a degraded control fails its line with the answer quoted") {
    auto r = healthy();
    control(r, "C012").evidence[0].answer = "present: /var/run/docker.sock";
    auto t = compliance::assess(r);
    auto line = [&](const char* s) {
        return *std::find_if(t.lines.begin(), t.lines.end(), [&](auto& l) { return l.rule->section == s; });
    };
    CHECK(line("5.32").verdict == Verdict::Fail);
    CHECK(line("5.32").reason.find("present: /var/run/docker.sock") != std::string::npos);
    CHECK(line("5.32").reason.find("without 'docker.sock'") != std::string::npos);
    CHECK(line("5.6").verdict == Verdict::Fail);

    auto rlimit = healthy();
    control(rlimit, "C007").status = ControlStatus::Degraded;
    control(rlimit, "C007").evidence[0].answer = "malloc failed (ENOMEM) at 250 MiB: RLIMIT_AS, no cgroup";
    auto v = verdicts(rlimit);
    CHECK(v["5.11"] == Verdict::Fail);  // a per-process bound is not a limit on the jail
    CHECK(v["5.29"] == Verdict::Pass);

    auto ro = healthy();
    control(ro, "C002").status = ControlStatus::Degraded;  // by status, only in_force passes
    CHECK(verdicts(ro)["5.13"] == Verdict::Fail);

    auto nnp = healthy();
    control(nnp, "C009").evidence[1].answer = "0";
    v = verdicts(nnp);
    CHECK(v["5.26"] == Verdict::Fail);
    CHECK(v["5.4"] == Verdict::Pass);
}

TEST_CASE("compliance: JSON names every line's sources and deciding probes") {
    auto r = healthy();
    control(r, "C003").status = ControlStatus::Missing;
    auto t = compliance::assess(r);
    auto j = compliance::to_json(t, r);
    CHECK(j["sources"]["cis-docker-1.6.0"].get<std::string>().find("v1.6.0") != std::string::npos);
    CHECK(j["lines"].size() == compliance::rules().size());
    CHECK(j["summary"]["fail"] == t.count(Verdict::Fail));
    for (const auto& l : j["lines"]) {
        if (l["section"] != "5.10") continue;
        CHECK(l["verdict"] == "fail");
        CHECK(l["decided_by"][0]["control"] == "C003");
        CHECK(l["decided_by"][0]["answer"].get<std::string>().rfind("missing", 0) == 0);
    }
    auto text = compliance::to_table(t, r);
    CHECK(text.find("5.10   fail") != std::string::npos);
    CHECK(text.find("not assessed") != std::string::npos);
}
