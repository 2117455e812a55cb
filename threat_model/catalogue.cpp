#include "threat_model/catalogue.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>

namespace kiln::threat_model {

namespace {

std::string where(const YAML::Node& node) {
    return "catalogue line " + std::to_string(node.Mark().line + 1);
}

Result<std::string> required_string(const YAML::Node& entry, const char* key) {
    const YAML::Node v = entry[key];
    if (!v || !v.IsScalar() || v.Scalar().empty())
        return make_error(where(entry), std::string("missing or empty '") + key + "'");
    return v.Scalar();
}

Result<Threat> parse_threat(const YAML::Node& n) {
    Threat t;
    for (auto [field, key] : {std::pair{&t.id, "id"}, {&t.name, "name"}, {&t.description, "description"}}) {
        auto v = required_string(n, key);
        if (!v) return std::move(v).error();
        *field = *v;
    }
    for (auto [field, key] : {std::pair{&t.impact, "impact"}, {&t.probability, "probability"}}) {
        auto s = required_string(n, key);
        if (!s) return std::move(s).error();
        auto l = parse_level(*s);
        if (!l) return make_error(where(n[key]), t.id + " " + key + ": " + l.error().message);
        *field = *l;
    }
    const YAML::Node controls = n["controls"];
    if (!controls || !controls.IsSequence() || controls.size() == 0)
        return make_error(where(n), t.id + ": 'controls' must be a non-empty list");
    for (const auto& c : controls) t.controls.push_back(c.as<std::string>());
    return t;
}

Result<Control> parse_control(const YAML::Node& n) {
    Control c;
    for (auto [field, key] : {std::pair{&c.id, "id"}, {&c.name, "name"}, {&c.description, "description"},
                              {&c.how_verified, "how_verified"}}) {
        auto v = required_string(n, key);
        if (!v) return std::move(v).error();
        *field = *v;
    }
    return c;
}

// Every control a threat names must be defined: a typo would otherwise make
// that threat impossible to mitigate, silently.
Status check_references(const Catalogue& cat) {
    for (const auto& t : cat.threats)
        for (const auto& c : t.controls)
            if (!cat.find_control(c))
                return make_error("catalogue", t.id + " names unknown control " + c);
    return {};
}

Result<Catalogue> parse_nodes(const YAML::Node& root) {
    Catalogue cat;
    if (!root.IsMap() || !root["threats"].IsSequence() || !root["controls"].IsSequence())
        return make_error("catalogue", "expected top-level 'threats' and 'controls' lists");
    for (const auto& n : root["threats"]) {
        auto t = parse_threat(n);
        if (!t) return std::move(t).error();
        cat.threats.push_back(std::move(*t));
    }
    for (const auto& n : root["controls"]) {
        auto c = parse_control(n);
        if (!c) return std::move(c).error();
        cat.controls.push_back(std::move(*c));
    }
    if (Status st = check_references(cat); !st) return st.error();
    return cat;
}

}  // namespace

const Threat* Catalogue::find_threat(std::string_view id) const {
    auto it = std::find_if(threats.begin(), threats.end(), [&](const Threat& t) { return t.id == id; });
    return it == threats.end() ? nullptr : &*it;
}

const Control* Catalogue::find_control(std::string_view id) const {
    auto it = std::find_if(controls.begin(), controls.end(), [&](const Control& c) { return c.id == id; });
    return it == controls.end() ? nullptr : &*it;
}

Result<Catalogue> parse_catalogue(std::string_view yaml_text) {
    try {
        return parse_nodes(YAML::Load(std::string(yaml_text)));
    } catch (const YAML::Exception& e) {
        return make_error("parse catalogue", "line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
}

int weight(Level l) {
    switch (l) {
        case Level::Low: return 1;
        case Level::Medium: return 2;
        case Level::High: return 3;
        case Level::Critical: return 3;
    }
    return 3;
}

Level band(double score) {
    if (score >= 7) return Level::Critical;
    if (score >= 5) return Level::High;
    if (score >= 3) return Level::Medium;
    return Level::Low;
}

Risk score(const Threat& threat, const std::set<std::string>& controls_in_force) {
    Risk r;
    for (const auto& c : threat.controls)
        if (!controls_in_force.count(c)) r.missing_controls.push_back(c);
    r.mitigated = r.missing_controls.empty();
    r.score = weight(threat.impact) * weight(threat.probability) * (r.mitigated ? 0.3 : 1.0);
    r.level = band(r.score);
    return r;
}

std::string to_string(Level l) {
    switch (l) {
        case Level::Low: return "low";
        case Level::Medium: return "medium";
        case Level::High: return "high";
        case Level::Critical: return "critical";
    }
    return "critical";
}

Result<Level> parse_level(std::string_view text) {
    std::string s(text);
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    if (s == "low") return Level::Low;
    if (s == "medium") return Level::Medium;
    if (s == "high") return Level::High;
    if (s == "critical") return Level::Critical;
    return make_error("parse level", "'" + std::string(text) + "' is not one of low, medium, high, critical");
}

}  // namespace kiln::threat_model
