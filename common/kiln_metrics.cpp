#include "common/kiln_metrics.hpp"

#include <array>
#include <map>

namespace kiln::metrics {
namespace {

// Jail setup is milliseconds (docs/performance.md: about 3 ms as root);
// a program's run is anything up to the policy's longest timeout.
constexpr double kSetupBounds[] = {0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1};
constexpr double kRunBounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900};

constexpr int kFirstStatus = 100, kLastStatus = 599;

// A family's series for every value of an enum, indexed by the enum.
template <class E, std::size_t N>
std::array<Counter*, N> declare_all(Family<Counter>& family, const LabelName<E> (&names)[N]) {
    std::array<Counter*, N> out{};
    for (const auto& n : names) out[static_cast<std::size_t>(n.value)] = &family.declare({std::string(n.name)});
    return out;
}

struct Set {
    Registry registry;

    Family<Counter>& tool_calls = registry.add<Counter>(
        "kiln_tool_calls_total", "tools/call requests that reached a registered tool, by tool and outcome", {"tool", "outcome"});
    Family<Counter>& decisions_family = registry.add<Counter>(
        "kiln_decisions_total", "Decisions on run_code and run_command calls, by level", {"decision"});
    Family<Counter>& findings_family = registry.add<Counter>(
        "kiln_findings_total", "Validator findings in the code of run_code and run_command calls, by threat", {"threat"});
    Family<Counter>& executions_family = registry.add<Counter>(
        "kiln_executions_total", "run_code and run_command calls, by how they ended", {"outcome"});
    Histogram& jail_setup = registry.add<Histogram>(
        "kiln_jail_setup_seconds", "Time to build a jail, from clone to the program's exec",
        {}, std::vector<double>(std::begin(kSetupBounds), std::end(kSetupBounds))).declare({});
    Histogram& execution = registry.add<Histogram>(
        "kiln_execution_duration_seconds", "Time a program ran in its jail (setup and teardown apart)",
        {}, std::vector<double>(std::begin(kRunBounds), std::end(kRunBounds))).declare({});
    Gauge& sessions = registry.add<Gauge>("kiln_sessions_active", "MCP sessions open, over any transport").declare({});
    Gauge& runs = registry.add<Gauge>("kiln_runs_active", "Runs holding a run slot (workspace.max_runs_total)").declare({});
    Gauge& waiting = registry.add<Gauge>("kiln_runs_waiting", "Calls waiting for a run slot (workspace.queue_length)").declare({});
    Gauge& sse = registry.add<Gauge>("kiln_sse_streams_active", "Server-sent event streams open on the HTTP transport").declare({});
    Counter& audit_records = registry.add<Counter>("kiln_audit_records_total", "Audit records this process wrote").declare({});
    Counter& audit_failures = registry.add<Counter>(
        "kiln_audit_write_failures_total", "Audit records this process failed to write").declare({});
    Family<Counter>& http_family = registry.add<Counter>(
        "kiln_http_requests_total", "HTTP responses sent, by status code", {"code"});
    Family<Counter>& auth_family = registry.add<Counter>(
        "kiln_auth_failures_total", "Requests refused for their credentials, by reason", {"reason"});

    std::array<Counter*, std::size(kDecisionLevelNames)> decisions = declare_all(decisions_family, kDecisionLevelNames);
    std::array<Counter*, std::size(kExecutionOutcomeNames)> executions = declare_all(executions_family, kExecutionOutcomeNames);
    std::array<Counter*, std::size(kAuthFailureNames)> auth = declare_all(auth_family, kAuthFailureNames);
    // Status codes are declared on first use; index kLastStatus + 1 - 100 is "other".
    std::array<std::atomic<Counter*>, kLastStatus - kFirstStatus + 2> http{};

    std::mutex threats_mutex;
    std::map<std::string, Counter*, std::less<>> threats;
};

Set& set() {
    static Set s;
    return s;
}

std::size_t http_index(int status) {
    if (status < kFirstStatus || status > kLastStatus) return kLastStatus - kFirstStatus + 1;
    return static_cast<std::size_t>(status - kFirstStatus);
}

Counter& http_counter(int status) {
    Set& s = set();
    std::size_t i = http_index(status);
    Counter* c = s.http[i].load(std::memory_order_acquire);
    if (!c) {
        // declare() returns the same series to every racer; storing it twice is harmless.
        c = &s.http_family.declare({i == s.http.size() - 1 ? std::string("other") : std::to_string(status)});
        s.http[i].store(c, std::memory_order_release);
    }
    return *c;
}

}  // namespace

void ToolCalls::record(ToolOutcome outcome) noexcept { by_outcome_[static_cast<std::size_t>(outcome)]->inc(); }

std::uint64_t ToolCalls::value(ToolOutcome outcome) const noexcept {
    return by_outcome_[static_cast<std::size_t>(outcome)]->value();
}

ToolCalls& tool_calls(const std::string& registered_tool) {
    static std::mutex mutex;
    static std::map<std::string, ToolCalls> tools;
    std::lock_guard lock(mutex);
    auto [it, added] = tools.try_emplace(registered_tool);
    if (added)
        for (const auto& n : kToolOutcomeNames)
            it->second.by_outcome_[static_cast<std::size_t>(n.value)] =
                &set().tool_calls.declare({registered_tool, std::string(n.name)});
    return it->second;
}

Counter& decisions(DecisionLevel level) { return *set().decisions[static_cast<std::size_t>(level)]; }
Counter& executions(ExecutionOutcome outcome) { return *set().executions[static_cast<std::size_t>(outcome)]; }

void declare_threats(std::span<const std::string> threat_ids) {
    Set& s = set();
    std::lock_guard lock(s.threats_mutex);
    for (const auto& id : threat_ids)
        if (!s.threats.count(id)) s.threats.emplace(id, &s.findings_family.declare({id}));
}

void record_finding(std::string_view threat_id) {
    Set& s = set();
    std::lock_guard lock(s.threats_mutex);
    if (auto it = s.threats.find(threat_id); it != s.threats.end()) it->second->inc();
}

std::uint64_t findings(std::string_view threat_id) {
    Set& s = set();
    std::lock_guard lock(s.threats_mutex);
    auto it = s.threats.find(threat_id);
    return it == s.threats.end() ? 0 : it->second->value();
}

Histogram& jail_setup_seconds() { return set().jail_setup; }
Histogram& execution_seconds() { return set().execution; }
Gauge& sessions_active() { return set().sessions; }
Gauge& runs_active() { return set().runs; }
Gauge& runs_waiting() { return set().waiting; }
Counter& audit_records() { return set().audit_records; }
Counter& audit_write_failures() { return set().audit_failures; }

void record_http_request(int status) { http_counter(status).inc(); }
std::uint64_t http_requests(int status) { return http_counter(status).value(); }
void record_auth_failure(AuthFailure reason) { auth_failures(reason).inc(); }
Counter& auth_failures(AuthFailure reason) { return *set().auth[static_cast<std::size_t>(reason)]; }
Gauge& sse_streams() { return set().sse; }

std::string render() { return set().registry.render(); }

}  // namespace kiln::metrics
