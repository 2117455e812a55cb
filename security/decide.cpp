#include "security/decide.hpp"

namespace kiln::security {
namespace {

Verdict fallback(const DecideInput& in, const std::string& why) {
    Decision d = in.policy.ask_fallback;
    return {d, d == Decision::Allow ? "approved" : "denied", why + "; policy fallback: " + std::string(to_string(d))};
}

Verdict with_trust_hint(Verdict v, const std::string& fingerprint) {
    v.how += ". To approve this exact code: kiln trust add --sha256 " + fingerprint;
    return v;
}

// An `ask`: the trust store, then a person, then the fallback.
Verdict resolve_ask(const DecideInput& in) {
    if (in.trust) {
        auto trusted = in.trust->consume(in.fingerprint);
        if (trusted && *trusted)
            return {Decision::Allow, "approved",
                    "approved: code hash " + in.fingerprint.substr(0, 16) + "... is in the trust store"};
    }
    if (!in.ask)
        return with_trust_hint(fallback(in, "approval needed but " + in.why_nobody), in.fingerprint);
    auto answer = in.ask(in.assessment);
    if (!answer) return fallback(in, "approval request failed (" + answer.error().what() + ")");
    switch (answer->choice) {
        case Answer::Choice::ApproveAndRemember:
            if (in.trust)
                (void)in.trust->add({in.fingerprint, "approved by the user through " + answer->who, 0, {}, {}});
            [[fallthrough]];
        case Answer::Choice::ApproveOnce:
            return {Decision::Allow, "approved", "approved by the user (" + answer->said + ")"};
        case Answer::Choice::Deny:
            break;
    }
    return {Decision::Deny, "denied", "denied by the user (" + answer->said + ")"};
}

}  // namespace

Verdict decide(const DecideInput& in) {
    const Decision d = in.assessment.decision;
    switch (in.mode) {
        case ValidationMode::Off:
            return {Decision::Allow, "allow", "validation is off (policy.validation=off)"};
        case ValidationMode::Warn:
            if (d == Decision::Allow) break;
            return {Decision::Allow, to_string(d), "policy.validation=warn: would have been " + std::string(to_string(d)) + ", running anyway"};
        case ValidationMode::Enforce:
            break;
    }
    switch (d) {
        case Decision::Allow: return {Decision::Allow, "allow", "policy " + in.policy.name};
        case Decision::Deny: return {Decision::Deny, "deny", "policy " + in.policy.name};
        case Decision::Ask: return resolve_ask(in);
    }
    return {Decision::Deny, "deny", "policy " + in.policy.name};
}

}  // namespace kiln::security
