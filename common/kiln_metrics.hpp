// Kiln's metrics: every family the server exports (docs/metrics.md), one
// process-wide set, and the calls that record into it. The tools, the
// audit log and the MCP sessions record here whatever the transport, so
// stdio serving counts as HTTP serving does; a transport adds its HTTP
// requests, auth failures and SSE streams, and `render()` is the body of
// GET /metrics.
//
// Every label's values are a closed set named by Kiln's code: the enums
// below, the registered tools, the catalogue's threats, HTTP status codes.
// Nothing a client sends becomes a label value.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "common/metrics.hpp"

namespace kiln::metrics {

template <class E>
struct LabelName {
    E value;
    std::string_view name;
};

// How a tools/call ended in the registry.
enum class ToolOutcome { Ok, Error, InvalidArguments, Exception };
inline constexpr LabelName<ToolOutcome> kToolOutcomeNames[] = {
    {ToolOutcome::Ok, "ok"},
    {ToolOutcome::Error, "error"},                        // the tool answered isError
    {ToolOutcome::InvalidArguments, "invalid_arguments"}, // refused by the inputSchema (C004)
    {ToolOutcome::Exception, "exception"}};               // the tool threw

// The decision on a run_code / run_command call: what the validator and
// decide() made of it, or refused before the validator saw it.
enum class DecisionLevel { Allow, Approved, Warned, Deny, Denied, Refused };
inline constexpr LabelName<DecisionLevel> kDecisionLevelNames[] = {
    {DecisionLevel::Allow, "allow"},        // the validator allowed it
    {DecisionLevel::Approved, "approved"},  // asked; the trust store, a person or the fallback approved
    {DecisionLevel::Warned, "warned"},      // policy.validation=warn: ran though it was ask or deny
    {DecisionLevel::Deny, "deny"},          // the validator denied it
    {DecisionLevel::Denied, "denied"},      // asked; a person or the fallback denied
    {DecisionLevel::Refused, "refused"}};   // stopped before the validator (bounds, run slot, audit log)

// How a run_code / run_command call ended.
enum class ExecutionOutcome { Ok, Failed, Timeout, Oom, Cancelled, Denied, Refused, Error };
inline constexpr LabelName<ExecutionOutcome> kExecutionOutcomeNames[] = {
    {ExecutionOutcome::Ok, "ok"},                // ran and exited 0
    {ExecutionOutcome::Failed, "failed"},        // ran and exited non-zero or on a signal
    {ExecutionOutcome::Timeout, "timeout"},      // killed at its wall-clock limit
    {ExecutionOutcome::Oom, "oom"},              // killed at its memory limit
    {ExecutionOutcome::Cancelled, "cancelled"},  // the client cancelled it (running or waiting for a slot)
    {ExecutionOutcome::Denied, "denied"},        // decision deny or denied: nothing ran
    {ExecutionOutcome::Refused, "refused"},      // refused before the validator: nothing ran
    {ExecutionOutcome::Error, "error"}};         // Kiln could not run it (workspace, files, jail start)

// Why a transport refused a request's credentials (any endpoint, /metrics
// and its own token included). The MCP endpoint's reasons are
// auth::AuthReason's, under the same names (server/auth_reason.hpp).
enum class AuthFailure {
    Missing, MalformedHeader, Malformed, UnknownToken, UnsupportedAlgorithm, UnknownKey,
    BadSignature, Expired, NotYetValid, WrongIssuer, WrongAudience, InsufficientScope
};
inline constexpr LabelName<AuthFailure> kAuthFailureNames[] = {
    {AuthFailure::Missing, "missing"},
    {AuthFailure::MalformedHeader, "malformed_header"},
    {AuthFailure::Malformed, "malformed"},
    {AuthFailure::UnknownToken, "unknown_token"},
    {AuthFailure::UnsupportedAlgorithm, "unsupported_algorithm"},
    {AuthFailure::UnknownKey, "unknown_key"},
    {AuthFailure::BadSignature, "bad_signature"},
    {AuthFailure::Expired, "expired"},
    {AuthFailure::NotYetValid, "not_yet_valid"},
    {AuthFailure::WrongIssuer, "wrong_issuer"},
    {AuthFailure::WrongAudience, "wrong_audience"},
    {AuthFailure::InsufficientScope, "insufficient_scope"}};

template <class E>
std::string_view label_name(E value, std::span<const LabelName<E>> table) {
    for (const auto& n : table)
        if (n.value == value) return n.name;
    return "?";
}

// ---- the tools layer --------------------------------------------------

// One registered tool's tools/call counters, one per outcome.
class ToolCalls {
public:
    void record(ToolOutcome outcome) noexcept;
    std::uint64_t value(ToolOutcome outcome) const noexcept;

private:
    friend ToolCalls& tool_calls(const std::string&);
    Counter* by_outcome_[std::size(kToolOutcomeNames)] = {};
};
// The counters of a registered tool (Registry::add), declared with every
// outcome at 0. Only names of registered tools may be passed.
ToolCalls& tool_calls(const std::string& registered_tool);

Counter& decisions(DecisionLevel level);
Counter& executions(ExecutionOutcome outcome);
// The threats findings may name (the catalogue's T001-T005), declared at 0.
void declare_threats(std::span<const std::string> threat_ids);
// A finding of a run's code; a threat not declared is not counted.
void record_finding(std::string_view threat_id);
std::uint64_t findings(std::string_view threat_id);  // 0 when not declared

Histogram& jail_setup_seconds();
Histogram& execution_seconds();  // the program's run in the jail, setup and teardown apart

Gauge& sessions_active();  // MCP sessions open, any transport
Gauge& runs_active();      // runs holding a run slot
Gauge& runs_waiting();     // calls waiting for a run slot

// ---- the audit log ----------------------------------------------------

Counter& audit_records();
Counter& audit_write_failures();

// ---- the transport ----------------------------------------------------

// One HTTP response sent, by status code (100-599; anything else counts as
// "other").
void record_http_request(int status);
std::uint64_t http_requests(int status);
void record_auth_failure(AuthFailure reason);
Counter& auth_failures(AuthFailure reason);
// Open SSE streams: hold a GaugeHold(sse_streams()) while one is open.
Gauge& sse_streams();

// The text exposition of every family (content type kContentType).
std::string render();

}  // namespace kiln::metrics
