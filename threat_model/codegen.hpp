// Helpers for the build-time generators (threat_model/catalogue_gen,
// security/policy_gen) that write data parsed from YAML out as C++.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "threat_model/catalogue.hpp"

namespace kiln::codegen {

// A C++ string literal holding `s` byte for byte. Octal escapes, unlike \x,
// stop after three digits, so a digit that follows cannot join them.
inline std::string literal(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[5];
            std::snprintf(esc, sizeof esc, "\\%03o", c);
            out += esc;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

// {"a", "b"}: a braced list of string literals.
inline std::string literal_list(const std::vector<std::string>& items) {
    std::string out = "{";
    for (const auto& item : items) out += (out.size() > 1 ? ", " : "") + literal(item);
    return out + "}";
}

// The enumerator, as code in a scope that names threat_model::Level as Level.
inline std::string level(threat_model::Level l) {
    switch (l) {
        case threat_model::Level::Low: return "Level::Low";
        case threat_model::Level::Medium: return "Level::Medium";
        case threat_model::Level::High: return "Level::High";
        case threat_model::Level::Critical: return "Level::Critical";
    }
    return "Level::Critical";
}

}  // namespace kiln::codegen
