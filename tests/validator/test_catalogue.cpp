#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "threat_model/catalogue.hpp"

using namespace kiln::threat_model;

TEST_CASE("embedded catalogue has the issue's threats and controls, exactly") {
    const Catalogue& c = catalogue();
    REQUIRE(c.threats.size() == 5);
    REQUIRE(c.controls.size() == 13);
    struct Want {
        const char *id, *name;
        Level impact, probability;
        std::vector<std::string> controls;
    };
    const Want want[] = {
        {"T001", "Container Escape", Level::High, Level::Low, {"C001", "C002", "C003", "C006", "C009", "C010"}},
        {"T002", "Code Injection", Level::High, Level::Medium, {"C002", "C004", "C005", "C006"}},
        {"T003", "Resource Exhaustion", Level::Medium, Level::High, {"C007", "C008"}},
        {"T004", "Privilege Escalation", Level::High, Level::Low, {"C001", "C009", "C010"}},
        {"T005", "Data Exfiltration", Level::High, Level::Medium, {"C003", "C011", "C012", "C013"}},
    };
    for (const auto& w : want) {
        const Threat* t = c.find_threat(w.id);
        REQUIRE(t != nullptr);
        CHECK(t->name == w.name);
        CHECK(t->impact == w.impact);
        CHECK(t->probability == w.probability);
        CHECK(t->controls == w.controls);
    }
    const char* names[] = {"Non-root User Execution", "Read-only Root Filesystem", "Network Isolation",
                           "Input Validation", "Command Allowlisting", "Seccomp Profile", "Resource Limits",
                           "Execution Timeout", "Capability Dropping", "LSM profile", "Audit Logging",
                           "Volume Restrictions", "Encrypted Storage"};
    for (int i = 0; i < 13; ++i) {
        char id[8];
        std::snprintf(id, sizeof id, "C%03d", i + 1);
        const Control* ctl = c.find_control(id);
        REQUIRE(ctl != nullptr);
        CHECK(ctl->name == names[i]);
        CHECK_FALSE(ctl->how_verified.empty());
    }
}

// kiln carries the catalogue as generated C++ (catalogue_gen); it must hold
// exactly what parsing the YAML gives, text included, byte for byte.
TEST_CASE("the built-in catalogue is what parsing threat_model/catalogue.yaml gives") {
    std::ifstream in(KILN_CATALOGUE_YAML, std::ios::binary);
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = parse_catalogue(text.str());
    REQUIRE(parsed.ok());
    const Catalogue& built = catalogue();
    REQUIRE(built.threats.size() == parsed->threats.size());
    for (std::size_t i = 0; i < built.threats.size(); ++i) {
        const Threat &b = built.threats[i], &p = parsed->threats[i];
        CHECK(b.id == p.id);
        CHECK(b.name == p.name);
        CHECK(b.description == p.description);
        CHECK(b.impact == p.impact);
        CHECK(b.probability == p.probability);
        CHECK(b.controls == p.controls);
    }
    REQUIRE(built.controls.size() == parsed->controls.size());
    for (std::size_t i = 0; i < built.controls.size(); ++i) {
        const Control &b = built.controls[i], &p = parsed->controls[i];
        CHECK(b.id == p.id);
        CHECK(b.name == p.name);
        CHECK(b.description == p.description);
        CHECK(b.how_verified == p.how_verified);
    }
}

TEST_CASE("risk bands: CRITICAL >= 7, HIGH >= 5, MEDIUM >= 3, else LOW") {
    CHECK(band(9) == Level::Critical);
    CHECK(band(7) == Level::Critical);
    CHECK(band(6.99) == Level::High);
    CHECK(band(5) == Level::High);
    CHECK(band(4.99) == Level::Medium);
    CHECK(band(3) == Level::Medium);
    CHECK(band(2.7) == Level::Low);
    CHECK(band(0) == Level::Low);
}

TEST_CASE("score = impact x probability, x0.3 only when every mitigating control is in force") {
    const Catalogue& c = catalogue();
    const Threat& t002 = *c.find_threat("T002");
    auto none = score(t002, {});
    CHECK(none.score == doctest::Approx(6.0));
    CHECK(none.level == Level::High);
    CHECK_FALSE(none.mitigated);
    CHECK(none.missing_controls == std::vector<std::string>{"C002", "C004", "C005", "C006"});

    auto partial = score(t002, {"C002", "C004", "C006"});
    CHECK(partial.score == doctest::Approx(6.0));
    CHECK(partial.missing_controls == std::vector<std::string>{"C005"});

    auto all = score(t002, {"C002", "C004", "C005", "C006", "C011"});
    CHECK(all.mitigated);
    CHECK(all.score == doctest::Approx(1.8));
    CHECK(all.level == Level::Low);

    // No Landlock on the host: C010 missing, so T001 is not mitigated.
    const Threat& t001 = *c.find_threat("T001");
    auto no_lsm = score(t001, {"C001", "C002", "C003", "C006", "C009"});
    CHECK_FALSE(no_lsm.mitigated);
    CHECK(no_lsm.score == doctest::Approx(3.0));
    CHECK(no_lsm.level == Level::Medium);
    CHECK(score(*c.find_threat("T003"), {}).score == doctest::Approx(6.0));
}

TEST_CASE("a catalogue naming an undefined control is rejected") {
    auto bad = parse_catalogue(R"(threats:
  - {id: T9, name: X, description: d, impact: high, probability: low, controls: [C404]}
controls:
  - {id: C001, name: A, description: d, how_verified: v}
)");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.find("C404") != std::string::npos);
    auto bad_level = parse_catalogue(R"(threats:
  - {id: T9, name: X, description: d, impact: huge, probability: low, controls: [C001]}
controls:
  - {id: C001, name: A, description: d, how_verified: v}
)");
    REQUIRE_FALSE(bad_level.ok());
    CHECK(bad_level.error().message.find("huge") != std::string::npos);
    CHECK_FALSE(parse_catalogue("threats: [").ok());
}
