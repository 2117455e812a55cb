// The threat model as data: threats T001-T005 and controls C001-C013.
//
// threat_model/catalogue.yaml is the source of truth; at build time
// catalogue_gen parses it and generates catalogue_data.cpp, which builds the
// same Catalogue into the binary, so `kiln` works from any directory and
// parses no YAML for it at run time. This module holds the parser and
// implements the risk arithmetic the issue specifies, so no other code
// hard-codes an impact, a probability or which control mitigates what.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace kiln::threat_model {

enum class Level { Low, Medium, High, Critical };

struct Threat {
    std::string id;           // "T001"
    std::string name;         // "Container Escape"
    std::string description;
    Level impact = Level::Low;       // only Low/Medium/High are meaningful
    Level probability = Level::Low;
    std::vector<std::string> controls;  // mitigating control ids
};

struct Control {
    std::string id;           // "C001"
    std::string name;
    std::string description;
    std::string how_verified;
};

struct Catalogue {
    std::vector<Threat> threats;
    std::vector<Control> controls;

    const Threat* find_threat(std::string_view id) const;
    const Control* find_control(std::string_view id) const;
};

// Parses a catalogue; every threat's controls must exist in the same file.
Result<Catalogue> parse_catalogue(std::string_view yaml_text);

// The catalogue built into the binary (generated from catalogue.yaml by
// catalogue_gen with parse_catalogue(), so an invalid catalogue fails the
// build rather than scoring nothing at run time).
const Catalogue& catalogue();

// Result of scoring one threat for one run.
struct Risk {
    double score = 0;       // impact x probability, x0.3 when mitigated
    Level level = Level::Low;
    bool mitigated = false; // every mitigating control in force
    std::vector<std::string> missing_controls;
};

// HIGH=3 MEDIUM=2 LOW=1 (Critical counts as 3 too).
int weight(Level l);
// CRITICAL >= 7, HIGH >= 5, MEDIUM >= 3, else LOW.
Level band(double score);
// Scores one threat given the controls the runtime reports in force.
Risk score(const Threat& threat, const std::set<std::string>& controls_in_force);

// "low" "medium" "high" "critical".
std::string to_string(Level l);
Result<Level> parse_level(std::string_view text);

}  // namespace kiln::threat_model
