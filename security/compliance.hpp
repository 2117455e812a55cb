// The compliance view of the live selftest (`kiln selftest --compliance`):
// the container-runtime recommendations of the CIS Docker Benchmark v1.6.0
// (section 5) and the container and host-OS countermeasures of NIST SP
// 800-190 (sections 4.4 and 4.5), each decided by named selftest evidence.
//
// Nothing here measures: assess() only reads a selftest::Report. A line
// passes only when every check it names found its evidence in the report
// with the expected answer; a line with no deciding probe, or whose
// evidence the report lacks, is "not assessed", never "pass".
// docs/compliance.md lists every line with its sources.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "security/selftest.hpp"

namespace kiln::security::compliance {

enum class Framework { CisDocker, Nist800190 };
std::string_view to_string(Framework f);

enum class Verdict { Pass, Fail, NotAssessed };
std::string_view to_string(Verdict v);

// What decides one line. With `probe` empty, the control's status decides
// (in_force passes; degraded and missing fail). With `probe` set, the
// control's evidence whose probe starts with `probe` decides: its answer
// must equal `answer_is` (when set), start with `answer_starts` and not
// contain `answer_lacks`; a probe the selftest did not try ("not tried"),
// or one whose answer contains `answer_undecided` (the probe could not
// reach what it tests), leaves the line not assessed. A missing control
// fails either way.
struct Check {
    std::string_view control;
    std::string_view probe = {};
    std::string_view answer_is = {};
    std::string_view answer_starts = {};
    std::string_view answer_lacks = {};
    std::string_view answer_undecided = {};
};

// One recommendation. `checks` empty: Kiln has no probe that could decide
// it; `unassessed` says why (and where a test covers it instead).
struct Rule {
    Framework framework;
    std::string_view section;
    std::string_view title;
    std::vector<Check> checks;
    std::string_view unassessed = {};
};

// Every rule, in the benchmarks' order.
const std::vector<Rule>& rules();

// One check as it was decided: the evidence quoted from the report.
struct Decision {
    std::string control, probe, answer;
    Verdict verdict = Verdict::NotAssessed;
    std::string note;  // why it failed: what was expected, or the control's own summary
};

struct Line {
    const Rule* rule = nullptr;
    Verdict verdict = Verdict::NotAssessed;
    std::string reason;  // why this verdict, in one sentence
    std::vector<Decision> decided_by;
};

struct Table {
    std::vector<Line> lines;
    int count(Verdict v) const;
};

Table assess(const selftest::Report& report);

nlohmann::json to_json(const Table& table, const selftest::Report& report);
std::string to_table(const Table& table, const selftest::Report& report);

}  // namespace kiln::security::compliance
