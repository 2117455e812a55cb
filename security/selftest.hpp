// The live selftest: every control C001-C013 measured, never assumed.
//
// run() starts real jails through the configured runtime with the effective
// policy's limits and runs kiln-probe (security/kiln_probe.c) in them, asks
// the validator and the audit log to do their jobs once, reads the host's
// swap, and turns what the kernel answered into one status per control with
// its evidence, then scores each threat T001-T005 from the catalogue's
// formula with the controls as measured. `kiln selftest`, the
// `security_report` tool, `kiln://threat-model` and `kiln serve`'s start all
// show this one report (docs/threat-model.md, "Selftest").
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/result.hpp"
#include "sandbox/runtime.hpp"
#include "security/audit/audit_log.hpp"
#include "security/policy.hpp"
#include "threat_model/catalogue.hpp"

namespace kiln::security::selftest {

// in_force: every probe of the control got the answer the control promises.
// degraded: part of it holds (rlimits instead of a cgroup, RAM-only storage
// that is not encrypted). missing: the control does not hold here.
enum class ControlStatus { InForce, Degraded, Missing };
std::string_view to_string(ControlStatus s);

// One probe: what was tried (in words an operator can repeat) and what the
// kernel or the component answered, verbatim.
struct Evidence {
    std::string probe;   // "write /usr/x", "connect 127.0.0.1:PORT"
    std::string tried;   // where and how: "in a jail as uid 65534"
    std::string answer;  // "EROFS", "killed by the memory cgroup (oom_kill)"
};

struct ControlResult {
    std::string id, name;
    ControlStatus status = ControlStatus::Missing;
    bool required = false;  // the active policy and configuration need it
    std::string summary;    // one line: why this status
    std::vector<Evidence> evidence;
};

// A threat's live score: impact x probability (HIGH=3 MEDIUM=2 LOW=1),
// x0.3 when every mitigating control is in force (degraded does not count).
struct ThreatResult {
    std::string id, name;
    threat_model::Level impact = threat_model::Level::Low, probability = threat_model::Level::Low;
    std::vector<std::string> controls, missing_controls;
    bool mitigated = false;
    double score = 0;
    threat_model::Level level = threat_model::Level::Low;
};

struct Report {
    std::string runtime, policy, lsm, cgroup;
    bool rootless = false;
    nlohmann::json limits;  // the limits the probe jails got (security::run_limits_json)
    std::vector<ControlResult> controls;
    std::vector<ThreatResult> threats;
    std::vector<std::string> notes;
    std::chrono::milliseconds duration{};

    const ControlResult* find(std::string_view id) const;
    // Controls in force, for the validator's scoring (degraded is not in force).
    std::set<std::string> in_force() const;
    // Required controls that are missing: `kiln selftest` exits non-zero and
    // `kiln serve` refuses to start while this is not empty.
    std::vector<std::string> missing_required() const;
};

struct Options {
    const Config* config = nullptr;
    const Policy* policy = nullptr;
    sandbox::Runtime* runtime = nullptr;
    // The server's open log; nullptr: the configured one (audit.path) is
    // opened for the probe and closed again.
    audit::AuditLog* audit = nullptr;
    // kiln-probe. Empty: $KILN_PROBE, else the build tree's, else the installed one.
    std::string probe_path;
};

// An Error only when the selftest cannot run at all (no kiln-probe, no
// listener socket); a control that fails its probes is a result.
Result<Report> run(const Options& options);

// The JSON form (docs/threat-model.md documents every field).
nlohmann::json to_json(const Report& report);
// The human table of `kiln selftest`.
std::string to_table(const Report& report);

// Where kiln-probe is: `configured`, else $KILN_PROBE, else the build tree's, else the installed one.
Result<std::string> find_probe(const std::string& configured);

}  // namespace kiln::security::selftest
