// The benign and hostile corpora. Thresholds: every hostile file detected
// with its expected threat (each file is a distinct technique the issue
// names; missing one is a regression) and given, under each preset, the
// decision the MANIFEST expects from what the file does (a known gap is
// listed there with its reason and printed), every file marked "attack" carrying
// an attack-signature finding and held (ask or deny) under balanced with
// every control in force, and no finding above info
// on benign code (a false positive costs the user an approval prompt for
// ordinary work, which trains them to click through).
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "security/validator.hpp"
#include "tests/validator/helpers.hpp"

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

// One MANIFEST line: FILE THREAT [attack] balanced=D strict=D paranoid=D,
// each D the decision the file deserves from what it does (allow, ask, deny)
// with no control in force. A line "gap FILE PRESET TODAY REASON" records a
// known gap: the validator decides TODAY instead, for REASON.
struct Entry {
    std::string file, threat;
    bool attack = false;
    std::map<std::string, Decision> expected;
};

struct Gap {
    Decision today;
    std::string reason;
};

const std::vector<std::string> kPresets{"balanced", "strict", "paranoid"};

Decision decision_named(const std::string& s) {
    for (Decision d : {Decision::Allow, Decision::Ask, Decision::Deny})
        if (s == to_string(d)) return d;
    FAIL("unknown decision in MANIFEST: " << s);
    return Decision::Deny;
}

struct Manifest {
    std::vector<Entry> entries;
    std::map<std::pair<std::string, std::string>, Gap> gaps;  // (file, preset)
};

Manifest read_manifest() {
    std::ifstream in(kCorpus / "hostile" / "MANIFEST");
    REQUIRE(in);
    Manifest m;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ls(line);
        std::string first;
        ls >> first;
        if (first == "gap") {
            std::string file, preset, today, reason;
            ls >> file >> preset >> today;
            std::getline(ls >> std::ws, reason);
            REQUIRE_MESSAGE(!reason.empty(), "a gap needs its reason: " << line);
            m.gaps[{file, preset}] = Gap{decision_named(today), reason};
            continue;
        }
        Entry e{first, "", false, {}};
        ls >> e.threat;
        for (std::string tok; ls >> tok;) {
            if (tok == "attack") {
                e.attack = true;
                continue;
            }
            auto eq = tok.find('=');
            REQUIRE_MESSAGE(eq != std::string::npos, "bad MANIFEST token " << tok << " in: " << line);
            e.expected[tok.substr(0, eq)] = decision_named(tok.substr(eq + 1));
        }
        for (const auto& preset : kPresets)
            REQUIRE_MESSAGE(e.expected.count(preset), e.file << " has no expected decision under " << preset);
        m.entries.push_back(std::move(e));
    }
    return m;
}

}  // namespace

TEST_CASE("hostile corpus: every file gets its expected decision under every preset") {
    const Manifest m = read_manifest();
    std::map<std::string, Policy> policy;
    for (const auto& name : kPresets) policy[name] = testing::preset(name);
    const Policy permissive = testing::preset("permissive");
    int total = 0, detected = 0, attacks = 0, attacks_held = 0, gaps_seen = 0;
    std::map<std::string, int> as_expected;
    std::string missed, attacks_let_through, wrong, gap_report;
    for (const auto& e : m.entries) {
        fs::path p = kCorpus / "hostile" / e.file;
        REQUIRE_MESSAGE(fs::exists(p), p);
        ++total;
        const Language lang = language_of(p);
        const std::string code = slurp(p);
        for (const auto& name : kPresets) {
            auto a = assess(lang, code, {}, policy[name]);
            if (name == "balanced") {
                bool hit = false;
                for (const auto& f : a.findings) hit |= f.threat == e.threat && f.severity >= Severity::Medium;
                if (hit) ++detected;
                else missed += " " + e.file + "(" + e.threat + ")";
            }
            auto gap = m.gaps.find({e.file, name});
            if (gap != m.gaps.end()) {
                // A known gap must still be one: once the validator is fixed
                // the line goes, so the MANIFEST never hides a fixed case.
                ++gaps_seen;
                if (a.decision != gap->second.today)
                    wrong += "\n  " + e.file + " under " + name + ": known gap closed (now " +
                             to_string(a.decision) + "); remove its gap line";
                gap_report += "\n  " + e.file + " under " + name + ": " + to_string(a.decision) + ", want " +
                              to_string(e.expected.at(name)) + " (" + gap->second.reason + ")";
                continue;
            }
            if (a.decision == e.expected.at(name)) ++as_expected[name];
            else
                wrong += "\n  " + e.file + " under " + name + ": " + to_string(a.decision) + ", want " +
                         to_string(e.expected.at(name));
        }
        // permissive only warns: every file runs, with its findings reported.
        auto warned = assess(lang, code, {}, permissive);
        if (warned.decision != Decision::Allow || warned.findings.empty())
            wrong += "\n  " + e.file + " under permissive: " + to_string(warned.decision) + " with " +
                     std::to_string(warned.findings.size()) + " findings, want allow with findings";
        if (!e.attack) continue;
        ++attacks;
        auto guarded = assess(lang, code, all_controls(), policy["balanced"]);
        bool flagged = false;
        for (const auto& f : guarded.findings) flagged |= f.attack_signature;
        if (flagged && guarded.decision != Decision::Allow) ++attacks_held;
        else attacks_let_through += " " + e.file;
    }
    for (const auto& [key, gap] : m.gaps) {
        bool listed = false;
        for (const auto& e : m.entries) listed |= e.file == key.first;
        CHECK_MESSAGE(listed, "gap line for a file not in the MANIFEST: " << key.first);
    }
    // Every file in the directory must be listed, so none is silently skipped.
    int files = 0;
    for (const auto& e : fs::directory_iterator(kCorpus / "hostile")) files += e.path().filename() != "MANIFEST";
    CHECK(files == total);
    MESSAGE("hostile corpus: " << detected << "/" << total << " detected with the expected threat; decisions as "
                               << "expected: balanced " << as_expected["balanced"] << ", strict "
                               << as_expected["strict"] << ", paranoid " << as_expected["paranoid"] << " of "
                               << total << "; " << gaps_seen << " known gaps:" << gap_report);
    MESSAGE("attack signatures: " << attacks_held << "/" << attacks
                                   << " held under balanced with every control in force");
    CHECK_MESSAGE(missed.empty(), "missed:" << missed);
    CHECK_MESSAGE(wrong.empty(), "decisions:" << wrong);
    CHECK_MESSAGE(attacks_let_through.empty(), "attack signatures allowed or unflagged:" << attacks_let_through);
    CHECK(total >= 100);
    CHECK(attacks >= 50);
}

TEST_CASE("benign corpus: false-positive rate") {
    const Policy strict = testing::preset("strict");
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
