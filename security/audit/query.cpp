#include "security/audit/query.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <sstream>

#include "security/audit/record.hpp"

namespace kiln::audit {
namespace {

std::string str(const nlohmann::json& record, const char* key) {
    auto it = record.find(key);
    return it != record.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const nlohmann::json& obj(const nlohmann::json& record, const char* key) {
    static const nlohmann::json empty = nlohmann::json::object();
    auto it = record.find(key);
    return it != record.end() && it->is_object() ? *it : empty;
}

const nlohmann::json& arr(const nlohmann::json& record, const char* key) {
    static const nlohmann::json empty = nlohmann::json::array();
    auto it = record.find(key);
    return it != record.end() && it->is_array() ? *it : empty;
}

// A threat is raised by a record when one of its findings names it. The
// `threats` array scores every threat of the model on every call, so it
// cannot say which ones this code touched.
std::vector<std::string> threats_raised(const nlohmann::json& record) {
    std::vector<std::string> ids;
    for (const auto& f : arr(record, "findings"))
        if (f.is_object() && f.contains("threat") && f["threat"].is_string()) ids.push_back(f["threat"]);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
}

// ok, exit_nonzero, signal, timeout, oom, or "" when the record has no result.
std::string outcome(const nlohmann::json& record) {
    const auto& r = obj(record, "result");
    if (r.empty()) return record.value("event", "") == "error" ? "error" : "";
    if (r.value("oom_killed", false)) return "oom";
    if (r.value("timed_out", false)) return "timeout";
    if (r.contains("signal") && !r["signal"].is_null() && r["signal"] != 0) return "signal";
    if (r.contains("exit_code") && r["exit_code"].is_number_integer())
        return r["exit_code"].get<int>() == 0 ? "ok" : "exit_nonzero";
    return "unknown";
}

std::string number_text(const nlohmann::json& v) {
    if (v.is_number_integer()) return std::to_string(v.get<long long>());
    if (v.is_number()) {
        std::ostringstream s;
        s << v.get<double>();
        return s.str();
    }
    return v.is_string() ? v.get<std::string>() : std::string();
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    std::size_t rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

nlohmann::json percentiles(const std::vector<double>& v) {
    return {{"count", v.size()}, {"p50", percentile(v, 50)}, {"p90", percentile(v, 90)},
            {"p99", percentile(v, 99)}, {"max", percentile(v, 100)}};
}

}  // namespace

int risk_rank(const std::string& level) {
    static constexpr std::array<std::string_view, 5> kLevels{"none", "low", "medium", "high", "critical"};
    for (std::size_t i = 0; i < kLevels.size(); ++i)
        if (level == kLevels[i]) return static_cast<int>(i);
    return -1;
}

std::string record_risk(const nlohmann::json& record) {
    // The validator's assessment gives risk as a level string; an object
    // {score, level} is accepted too.
    if (std::string level = str(record, "risk"); !level.empty()) return level;
    if (std::string level = str(obj(record, "risk"), "level"); !level.empty()) return level;
    std::string worst;
    for (const auto& t : arr(record, "threats")) {
        std::string level = t.is_object() ? t.value("level", "") : "";
        if (risk_rank(level) > risk_rank(worst)) worst = level;
    }
    return worst;
}

bool Filter::matches(const nlohmann::json& record) const {
    if (since || until) {
        auto ts = parse_time(str(record, "ts"));
        if (!ts || (since && *ts < *since) || (until && *ts > *until)) return false;
    }
    if (!session.empty() && str(record, "session_id") != session) return false;
    if (!tool.empty() && str(record, "tool") != tool) return false;
    if (!decision.empty() && str(record, "decision") != decision) return false;
    if (!event.empty() && str(record, "event") != event) return false;
    if (!min_risk.empty() && risk_rank(record_risk(record)) < risk_rank(min_risk)) return false;
    if (!threat.empty()) {
        auto ids = threats_raised(record);
        if (std::find(ids.begin(), ids.end(), threat) == ids.end()) return false;
    }
    if (!id.empty()) {
        std::string own = record.contains("seq") && record["seq"].is_number_unsigned()
                              ? record_id(record["seq"].get<std::uint64_t>(), str(record, "hash"))
                              : std::string();
        if (own != id && str(record, "call_id") != id) return false;
    }
    return true;
}

Summary summarize(const nlohmann::json& record) {
    Summary s;
    s.ts = str(record, "ts");
    s.event = str(record, "event");
    s.session = str(record, "session_id");
    s.tool = str(record, "tool");
    s.decision = str(record, "decision");
    s.risk = record_risk(record);
    const auto& r = obj(record, "result");
    std::string out = outcome(record);
    if (out == "ok" || out == "exit_nonzero") s.exit = number_text(r["exit_code"]);
    else if (out == "signal") s.exit = "sig " + number_text(r["signal"]);
    else s.exit = out;
    if (r.contains("duration_ms")) s.duration = number_text(r["duration_ms"]) + "ms";
    const auto& findings = arr(record, "findings");
    if (!findings.empty() && findings[0].is_object()) {
        s.finding = findings[0].value("rule", "");
        if (std::string t = findings[0].value("threat", ""); !t.empty()) s.finding += " (" + t + ")";
    }
    if (record.contains("seq") && record["seq"].is_number_unsigned())
        s.id = record_id(record["seq"].get<std::uint64_t>(), str(record, "hash"));
    return s;
}

void Stats::add(const nlohmann::json& record) {
    ++records_;
    std::string event = str(record, "event");
    ++events_[event.empty() ? "?" : event];
    // One call spans tool_call, decision and execution records: each count
    // is taken from the one record that owns it so nothing counts thrice.
    if (std::string d = str(record, "decision"); !d.empty()) ++decisions_[d];
    if (std::string t = str(record, "tool"); !t.empty() && event == "tool_call") ++tools_[t];
    if (event == "decision")
        for (const auto& id : threats_raised(record)) ++threats_[id];
    if (std::string o = outcome(record); !o.empty()) ++outcomes_[o];
    const auto& r = obj(record, "result");
    if (r.contains("duration_ms") && r["duration_ms"].is_number()) duration_ms_.push_back(r["duration_ms"].get<double>());
    for (const auto& [phase, v] : obj(record, "timings").items())
        if (v.is_number()) timings_us_[phase].push_back(v.get<double>());
}

nlohmann::json Stats::to_json() const {
    nlohmann::json timings = nlohmann::json::object();
    for (const auto& [phase, v] : timings_us_) timings[phase] = percentiles(v);
    return {{"records", records_},     {"events", events_},   {"decisions", decisions_},
            {"threats", threats_},     {"tools", tools_},     {"outcomes", outcomes_},
            {"duration_ms", percentiles(duration_ms_)},       {"timings_us", timings}};
}

std::string Stats::to_text() const {
    std::ostringstream out;
    out << "records: " << records_ << "\n";
    auto section = [&](const char* title, const std::map<std::string, std::uint64_t>& counts) {
        out << "\n" << title << ":\n";
        if (counts.empty()) out << "  (none)\n";
        std::vector<std::pair<std::string, std::uint64_t>> sorted(counts.begin(), counts.end());
        std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
        for (const auto& [name, n] : sorted) out << "  " << name << std::string(name.size() < 24 ? 24 - name.size() : 1, ' ') << n << "\n";
    };
    section("by event", events_);
    section("by decision", decisions_);
    section("by threat", threats_);
    section("by tool", tools_);
    section("by outcome", outcomes_);
    auto line = [&](const std::string& name, const std::vector<double>& v, const char* unit) {
        out << "  " << name << std::string(name.size() < 16 ? 16 - name.size() : 1, ' ') << "n=" << v.size()
            << "  p50=" << percentile(v, 50) << unit << "  p90=" << percentile(v, 90) << unit
            << "  p99=" << percentile(v, 99) << unit << "  max=" << percentile(v, 100) << unit << "\n";
    };
    out << "\nlatency:\n";
    line("duration", duration_ms_, "ms");
    for (const auto& [phase, v] : timings_us_) line(phase, v, "us");
    return out.str();
}

}  // namespace kiln::audit
