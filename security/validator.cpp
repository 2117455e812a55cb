#include "security/validator.hpp"

namespace kiln::security {

// Interim: fails closed until the rules land.
Assessment assess(Language, std::string_view, const std::set<std::string>&, const Policy&) {
    Assessment a;
    a.decision = Decision::Deny;
    a.risk = threat_model::Level::Critical;
    a.reasons.push_back("validator not implemented yet: failing closed");
    return a;
}

std::vector<Finding> analyze(Language, std::string_view, const Policy&) { return {}; }

const char* to_string(Severity s) {
    switch (s) {
        case Severity::Info: return "info";
        case Severity::Low: return "low";
        case Severity::Medium: return "medium";
        case Severity::High: return "high";
        case Severity::Critical: return "critical";
    }
    return "critical";
}

nlohmann::json Assessment::to_json() const { return nlohmann::json::object(); }

}  // namespace kiln::security
