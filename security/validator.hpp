// The security validator: reads agent code, reports findings tied to the
// threat model, scores each threat against the controls in force for this
// run, and decides allow / ask / deny under a policy.
//
// It is an early filter and an audit signal, not the boundary: the sandbox
// is. See docs/threat-model.md for what a static reader cannot catch.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "security/language.hpp"
#include "security/policy.hpp"
#include "threat_model/catalogue.hpp"

namespace kiln::security {

enum class Severity { Info, Low, Medium, High, Critical };

struct Finding {
    std::string rule;                   // e.g. "py.shell-out"
    std::string threat;                 // "T002"
    std::vector<std::string> controls;  // controls concerned, from the catalogue
    Severity severity = Severity::Info;
    int line = 0, column = 0;           // 1-based; 0 when the finding is about the whole input
    std::string message;
    std::string hint;                   // what the agent can do instead
    // Code with no ordinary use (a kernel module load, a reverse shell, a
    // setuid shell, credentials sent out): controls in force never lower
    // its level. Always high or critical.
    bool attack_signature = false;
};

struct ThreatScore {
    std::string id, name;
    double score = 0;
    threat_model::Level level = threat_model::Level::Low;
    bool mitigated = false;
};

struct Assessment {
    Decision decision = Decision::Allow;
    threat_model::Level risk = threat_model::Level::Low;
    std::vector<Finding> findings;
    std::vector<ThreatScore> threats;
    std::vector<std::string> reasons;

    // The public contract shared by `kiln check --json` and assess_code:
    // {"decision","risk","findings":[{rule,threat,controls,severity,line,
    //  column,message,hint,attack_signature}],"threats":[{id,name,score,level,mitigated}],
    //  "reasons":[...]}, all enums as lowercase strings.
    nlohmann::json to_json() const;
};

// Thread-safe; never throws; gives a verdict on every input. The shell
// validator also applies the policy's command allowlist (C005) when enabled.
// controls_in_force is what the caller reports for this run (runtime plus
// tools layer); a control not in the set is not in force.
Assessment assess(Language language, std::string_view code,
                  const std::set<std::string>& controls_in_force, const Policy& policy);

// Findings only (no scoring or decision): for tests and tools that want them raw.
std::vector<Finding> analyze(Language language, std::string_view code, const Policy& policy);

const char* to_string(Severity s);

}  // namespace kiln::security
