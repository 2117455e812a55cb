// What run_code and run_command answer, typed, and the one table of its
// fields from which the tools' outputSchema, their structuredContent and
// the `execution` audit record's result are all made.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "sandbox/runtime.hpp"
#include "tools/rich_content.hpp"
#include "security/validator.hpp"

namespace kiln::tools {

struct RunOutcome {
    sandbox::ExecResult exec;  // empty when nothing ran
    // A security::Verdict label ("allow", "approved", "deny", "denied", or
    // under warn the decision not enforced), or "refused": stopped before
    // the validator (bounds, run slots, audit log), not by it.
    std::string decision = "refused";
    threat_model::Level risk = threat_model::Level::Low;
    nlohmann::json findings = nlohmann::json::array();
    std::string audit_id;  // the call's tool_call record (docs/audit.md)
    // Files of /workspace the run created or changed, each also a
    // resource_link item, and how many figures came back as image items.
    std::vector<rich::Change> files;
    std::size_t images = 0;
    // run_code persist:true: the interpreter's side of the answer
    // (generation, value, error, images, interrupted, state_lost); null otherwise.
    nlohmann::json interpreter;

    void take_assessment(const security::Assessment& a);
};

nlohmann::json outcome_schema();                        // the tools' outputSchema
nlohmann::json outcome_json(const RunOutcome& o);       // structuredContent
nlohmann::json outcome_audit(const RunOutcome& o);      // the execution record's "result"

// One finding as a line of text, the same wherever an agent or a person reads it.
std::string format_finding(const security::Finding& f);
// The compact text an LLM reads first: status, output, then findings.
std::string summarize(const sandbox::ExecResult& r, const security::Assessment& a, const std::string& language);

}  // namespace kiln::tools
