// Where a validator verdict becomes the decision on a run: the one function
// run_code, run_command and `kiln run` share. In order: the validation mode
// (off runs everything, warn runs everything and says what would have
// happened), then for an `ask` the trust store of approved code, then a
// person when the caller can ask one, then the policy's ask_fallback.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/choices.hpp"
#include "common/result.hpp"
#include "security/policy.hpp"
#include "security/trust_store.hpp"
#include "security/validator.hpp"

namespace kiln::security {

// What a person asked for approval said.
struct Answer {
    enum class Choice { ApproveOnce, ApproveAndRemember, Deny };
    Choice choice = Choice::Deny;
    std::string said;      // their words, for the record: "approve_once", "decline", ...
    std::string who;       // who approved, for a remembered entry's note
};
// Asks a person; an Error when the question could not be put or answered
// (the policy's fallback then applies).
using AskFn = std::function<Result<Answer>(const Assessment&)>;

struct DecideInput {
    const Assessment& assessment;
    ValidationMode mode = ValidationMode::Enforce;
    const Policy& policy;
    std::string fingerprint;  // code_fingerprint() of the code
    TrustStore* trust = nullptr;
    // Empty: nobody can be asked; `why_nobody` then says why.
    AskFn ask;
    std::string why_nobody = "nobody can be asked";
};

struct Verdict {
    Decision decision = Decision::Deny;  // Allow or Deny: what happens now
    // For the records and the agent: "allow", "deny", "approved", "denied",
    // or under warn the decision that was not enforced ("ask", "deny").
    std::string label;
    std::string how;  // one sentence: why
};

Verdict decide(const DecideInput& in);

}  // namespace kiln::security
