// The benign and hostile corpora. Thresholds: every hostile file detected
// with its expected threat (each file is a distinct technique the issue
// names; missing one is a regression), every file marked "attack" carrying
// an attack-signature finding and held (ask or deny) under balanced with
// every control in force, and no finding above info
// on benign code (a false positive costs the user an approval prompt for
// ordinary work, which trains them to click through).
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "security/validator.hpp"

using namespace kiln;
using namespace kiln::security;
namespace fs = std::filesystem;

namespace {

const fs::path kCorpus = KILN_VALIDATOR_CORPUS;

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream b;
    b << in.rdbuf();
    return b.str();
}

Language language_of(const fs::path& p) {
    auto l = guess_language(p.filename().string(), slurp(p));
    REQUIRE_MESSAGE(l.ok(), p);
    return *l;
}

std::set<std::string> all_controls() {
    std::set<std::string> s;
    for (const auto& c : threat_model::catalogue().controls) s.insert(c.id);
    return s;
}

Policy balanced() {
    auto p = load_policy(PolicyConfig{});
    REQUIRE(p.ok());
    return *p;
}

}  // namespace

TEST_CASE("hostile corpus: detection rate") {
    std::ifstream manifest(kCorpus / "hostile" / "MANIFEST");
    REQUIRE(manifest);
    Policy policy = balanced();
    int total = 0, detected = 0, denied_or_asked = 0, attacks = 0, attacks_held = 0;
    std::string missed, attacks_let_through;
    for (std::string line; std::getline(manifest, line);) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ls(line);
        std::string file, threat, mark;
        ls >> file >> threat >> mark;
        fs::path p = kCorpus / "hostile" / file;
        REQUIRE_MESSAGE(fs::exists(p), p);
        ++total;
        auto a = assess(language_of(p), slurp(p), {}, policy);
        bool hit = false;
        for (const auto& f : a.findings) hit |= f.threat == threat && f.severity >= Severity::Medium;
        if (hit) ++detected;
        else missed += " " + file + "(" + threat + ")";
        if (a.decision != Decision::Allow) ++denied_or_asked;
        if (mark != "attack") continue;
        ++attacks;
        auto guarded = assess(language_of(p), slurp(p), all_controls(), policy);
        bool flagged = false;
        for (const auto& f : guarded.findings) flagged |= f.attack_signature;
        if (flagged && guarded.decision != Decision::Allow) ++attacks_held;
        else attacks_let_through += " " + file;
    }
    // Every file in the directory must be listed, so none is silently skipped.
    int files = 0;
    for (const auto& e : fs::directory_iterator(kCorpus / "hostile")) files += e.path().filename() != "MANIFEST";
    CHECK(files == total);
    MESSAGE("hostile corpus: " << detected << "/" << total << " detected with the expected threat ("
                               << (100.0 * detected / total) << "%); " << denied_or_asked
                               << " denied or held for approval under balanced with no controls");
    MESSAGE("attack signatures: " << attacks_held << "/" << attacks
                                   << " held under balanced with every control in force");
    CHECK_MESSAGE(missed.empty(), "missed:" << missed);
    CHECK_MESSAGE(attacks_let_through.empty(), "attack signatures allowed or unflagged:" << attacks_let_through);
    CHECK(total >= 100);
    CHECK(attacks >= 50);
}

TEST_CASE("benign corpus: false-positive rate") {
    Policy strict;
    {
        PolicyConfig pc;
        pc.preset = "strict";
        auto p = load_policy(pc);
        REQUIRE(p.ok());
        strict = *p;
    }
    int total = 0, flagged = 0;
    std::string report;
    for (const auto& e : fs::directory_iterator(kCorpus / "benign")) {
        ++total;
        auto a = assess(language_of(e.path()), slurp(e.path()), {}, strict);
        // Informational findings (a shell-out judged on its constant
        // command) ask nothing of the user.
        const bool weighs = std::any_of(a.findings.begin(), a.findings.end(),
                                        [](const Finding& f) { return f.severity > Severity::Info; });
        if (weighs || a.decision != Decision::Allow) {
            ++flagged;
            report += "\n  " + e.path().filename().string() + ":";
            for (const auto& f : a.findings)
                report += " " + f.rule + "@" + std::to_string(f.line) + ":" + std::to_string(f.column);
        }
    }
    MESSAGE("benign corpus: " << flagged << "/" << total << " flagged (false-positive rate "
                              << (100.0 * flagged / total) << "%) under strict");
    CHECK_MESSAGE(flagged == 0, "false positives:" << report);
    CHECK(total >= 24);
}
