// Reading the log for people: filters behind `kiln audit show`, the one-line
// summary of a record, and the aggregates behind `kiln audit stats`. Field
// names follow the record schema in docs/audit.md.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::audit {

// none < low < medium < high < critical; -1 for anything else.
int risk_rank(const std::string& level);
// risk (a level string, or risk.level), else the highest threats[].level.
std::string record_risk(const nlohmann::json& record);

struct Filter {
    std::optional<std::chrono::system_clock::time_point> since, until;
    std::string session, tool, decision, threat, min_risk, event;
    std::string id;  // the record's own audit_id, or its call_id
    bool matches(const nlohmann::json& record) const;
};

struct Summary {
    std::string ts, event, session, tool, decision, risk, exit, duration, finding, id;
};
Summary summarize(const nlohmann::json& record);

class Stats {
public:
    void add(const nlohmann::json& record);
    nlohmann::json to_json() const;
    std::string to_text() const;

private:
    std::uint64_t records_ = 0;
    std::map<std::string, std::uint64_t> events_, decisions_, threats_, tools_, outcomes_;
    std::vector<double> duration_ms_;
    std::map<std::string, std::vector<double>> timings_us_;
};

}  // namespace kiln::audit
