// assess(): input checks, the rule passes, then scoring and the decision.
//
// How a finding becomes risk (docs/threat-model.md explains it for users):
// a finding's level is its severity, lowered one step when every control
// mitigating its threat is in force, except that a critical finding stays
// critical whatever the mitigation, and an attack signature (a finding
// whose code has no ordinary use, see detail::Intent) is never lowered:
// the jail may hold the attempt, but the attempt is what an operator must
// see. The overall risk is the highest
// finding level (low when there is none). Each threat's row in the table
// is max(band(impact x probability [x0.3 if mitigated]), its findings).
#include "security/validator.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>

#include "common/text.hpp"
#include "security/rules.hpp"

namespace kiln::security {

namespace {

using threat_model::Level;

Level severity_level(Severity s, bool mitigated) {
    switch (s) {
        case Severity::Critical: return Level::Critical;
        case Severity::High: return mitigated ? Level::Medium : Level::High;
        case Severity::Medium: return mitigated ? Level::Low : Level::Medium;
        case Severity::Low:
        case Severity::Info: return Level::Low;
    }
    return Level::Critical;
}

// The level a finding counts for; `mitigated`: every control of its threat is in force.
Level finding_level(const Finding& f, bool mitigated) {
    return severity_level(f.severity, mitigated && !f.attack_signature);
}

// True when every byte is ASCII and none is NUL: then the input is valid
// UTF-8 text without asking the full decoder. Eight bytes per step.
bool is_plain_ascii(std::string_view code) {
    constexpr std::uint64_t kHigh = 0x8080808080808080ull, kOnes = 0x0101010101010101ull;
    std::size_t i = 0;
    for (; i + 8 <= code.size(); i += 8) {
        std::uint64_t w;
        std::memcpy(&w, code.data() + i, 8);
        // A high bit set, or a zero byte (the classic has-zero-byte test).
        if ((w & kHigh) != 0 || ((w - kOnes) & ~w & kHigh) != 0) return false;
    }
    for (; i < code.size(); ++i) {
        auto u = static_cast<unsigned char>(code[i]);
        if (u == 0 || u >= 0x80) return false;
    }
    return true;
}

// Input the tokenizers should not be asked to read, or that is not text.
// Returns the finding, if any, and whether analysis should still run.
std::optional<Finding> input_finding(std::string_view code, const Policy& policy, bool& analyse) {
    analyse = true;
    auto make = [](std::string rule, std::string message, std::string hint) {
        const auto* t = threat_model::catalogue().find_threat("T002");
        return Finding{std::move(rule), "T002", t ? t->controls : std::vector<std::string>{}, Severity::High, 0, 0,
                       std::move(message), std::move(hint)};
    };
    if (code.size() > policy.max_code_bytes) {
        analyse = false;
        return make("input.too-large",
                    "code is " + std::to_string(code.size()) + " bytes, over the policy limit of " +
                        std::to_string(policy.max_code_bytes),
                    "Send smaller code; put data in workspace files instead of inlining it.");
    }
    if (is_plain_ascii(code)) return std::nullopt;  // most code: skips the two scans below
    if (code.find('\0') != std::string_view::npos)
        return make("input.binary", "code contains NUL bytes (binary input)",
                    "Send source text; put binary data in workspace files.");
    if (!is_valid_utf8(code))
        return make("input.invalid-utf8", "code is not valid UTF-8", "Send UTF-8 source text.");
    return std::nullopt;
}

std::vector<Finding> run_rules(Language language, std::string_view code, const Policy& policy) {
    detail::Findings out(policy);
    switch (language) {
        case Language::Python: detail::rules_python(tokenize_python(code).tokens, out); break;
        case Language::Shell: detail::rules_shell(tokenize_shell(code).tokens, out); break;
        case Language::JavaScript: detail::rules_javascript(tokenize_javascript(code).tokens, out); break;
    }
    out.add_combined();
    // Rule passes run one after another; report in source order.
    std::stable_sort(out.list().begin(), out.list().end(), [](const Finding& a, const Finding& b) {
        return a.line != b.line ? a.line < b.line : a.column < b.column;
    });
    return std::move(out.list());
}

double round2(double v) { return std::round(v * 100.0) / 100.0; }

std::string missing_text(const std::vector<std::string>& missing) {
    std::string s;
    for (const auto& c : missing) {
        if (!s.empty()) s += ", ";
        const auto* ctl = threat_model::catalogue().find_control(c);
        s += c + (ctl ? " " + ctl->name : "");
    }
    return s;
}

struct Scored {
    std::vector<ThreatScore> threats;
    Level risk = Level::Low;
    std::vector<std::string> reasons;
};

Scored score_all(const std::vector<Finding>& findings, const std::set<std::string>& controls) {
    Scored s;
    for (const auto& t : threat_model::catalogue().threats) {
        auto r = threat_model::score(t, controls);
        ThreatScore ts{t.id, t.name, round2(r.score), r.level, r.mitigated};
        int hits = 0, kept = 0;
        for (const auto& f : findings) {
            // An informational finding (a shell-out judged on its constant
            // command) says how the code was read; it weighs nothing.
            if (f.threat != t.id || f.severity == Severity::Info) continue;
            ++hits;
            Level l = finding_level(f, r.mitigated);
            if (l > ts.level) ts.level = l;
            if (l > s.risk) s.risk = l;
            if (r.mitigated && f.attack_signature && l > severity_level(f.severity, true)) ++kept;
        }
        if (hits > 0 && !r.mitigated)
            s.reasons.push_back(t.id + " " + t.name + " has " + std::to_string(hits) +
                                " finding(s) and is not fully mitigated: not in force: " +
                                missing_text(r.missing_controls));
        if (kept > 0)
            s.reasons.push_back(t.id + " " + t.name + " is mitigated, but " + std::to_string(kept) +
                                " attack signature(s) keep their severity: the attempt is reported whatever the "
                                "sandbox would hold");
        s.threats.push_back(std::move(ts));
    }
    return s;
}

Decision decide(Level risk, const Policy& policy) {
    if (risk >= policy.deny_at) return Decision::Deny;
    if (risk >= policy.ask_at) return Decision::Ask;
    return Decision::Allow;
}

void add_finding_reasons(Assessment& a) {
    std::size_t listed = 0;
    for (const auto& f : a.findings) {
        if (f.severity < Severity::Medium) continue;
        if (++listed > 10) {
            a.reasons.push_back("... and more findings (see findings)");
            break;
        }
        a.reasons.push_back(f.threat + " " + f.rule + " (" + to_string(f.severity) +
                            (f.attack_signature ? ", attack signature" : "") + ") at " +
                            std::to_string(f.line) + ":" + std::to_string(f.column) + ": " + f.message);
    }
}

Assessment assess_unchecked(Language language, std::string_view code, const std::set<std::string>& controls,
                            const Policy& policy) {
    Assessment a;
    bool analyse = true;
    std::optional<Finding> input = input_finding(code, policy, analyse);
    if (analyse) a.findings = run_rules(language, code, policy);
    if (input) a.findings.insert(a.findings.begin(), *input);

    Scored s = score_all(a.findings, controls);
    a.threats = std::move(s.threats);
    a.risk = s.risk;
    a.decision = decide(a.risk, policy);
    if (input) {
        // Unreadable input gets the policy's own decision for it, or a
        // stricter one if what could be read already demands it.
        if (policy.unparseable > a.decision) a.decision = policy.unparseable;
        a.reasons.push_back("input cannot be fully validated (" + input->rule + "): policy '" + policy.name +
                            "' says " + to_string(policy.unparseable) + " for such input");
    }
    add_finding_reasons(a);
    for (auto& r : s.reasons) a.reasons.push_back(std::move(r));
    if (a.findings.empty()) a.reasons.push_back("no findings");
    a.reasons.push_back("risk " + threat_model::to_string(a.risk) + " under policy '" + policy.name +
                        "' (deny at " + threat_model::to_string(policy.deny_at) + ", ask at " +
                        threat_model::to_string(policy.ask_at) + "): " + to_string(a.decision));
    if (policy.warn_only && a.decision != Decision::Allow) {
        a.reasons.push_back("policy '" + policy.name + "' is warn-only: allowed anyway");
        a.decision = Decision::Allow;
    }
    return a;
}

}  // namespace

Assessment assess(Language language, std::string_view code, const std::set<std::string>& controls_in_force,
                  const Policy& policy) {
    try {
        return assess_unchecked(language, code, controls_in_force, policy);
    } catch (const std::exception& e) {
        // Only allocation failure can get here; fail closed.
        Assessment a;
        a.decision = Decision::Deny;
        a.risk = Level::Critical;
        a.reasons.push_back(std::string("validator failed: ") + e.what() + "; denied");
        return a;
    }
}

std::vector<Finding> analyze(Language language, std::string_view code, const Policy& policy) {
    return run_rules(language, code, policy);
}

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

nlohmann::json Assessment::to_json() const {
    nlohmann::json f = nlohmann::json::array();
    for (const auto& x : findings)
        f.push_back({{"rule", x.rule},
                     {"threat", x.threat},
                     {"controls", x.controls},
                     {"severity", to_string(x.severity)},
                     {"line", x.line},
                     {"column", x.column},
                     {"message", x.message},
                     {"hint", x.hint},
                     {"attack_signature", x.attack_signature}});
    nlohmann::json t = nlohmann::json::array();
    for (const auto& x : threats)
        t.push_back({{"id", x.id},
                     {"name", x.name},
                     {"score", x.score},
                     {"level", threat_model::to_string(x.level)},
                     {"mitigated", x.mitigated}});
    return {{"decision", to_string(decision)},
            {"risk", threat_model::to_string(risk)},
            {"findings", f},
            {"threats", t},
            {"reasons", reasons}};
}

}  // namespace kiln::security
