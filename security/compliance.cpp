#include "security/compliance.hpp"

#include <algorithm>
#include <sstream>

namespace kiln::security::compliance {
namespace {

using nlohmann::json;
using selftest::ControlStatus;

// The evidence the checks quote, as security/selftest.cpp names it. A probe
// renamed there leaves its lines "not assessed" (never "pass"), and the
// sandbox suite's compliance test fails on this machine until it is renamed
// here too.
constexpr std::string_view kCaps = "CapEff/CapPrm/CapBnd/CapAmb";
constexpr std::string_view kNoCaps = "0000000000000000/0000000000000000/0000000000000000/0000000000000000";
constexpr std::string_view kNnp = "NoNewPrivs";
constexpr std::string_view kHostPaths = "lstat /home";
constexpr std::string_view kMemory = "allocate ";
constexpr std::string_view kPids = "fork past pids";
constexpr std::string_view kInterfaces = "interfaces in /proc/net/dev";
constexpr std::string_view kPidNs = "readlink /proc/self/ns/pid";
constexpr std::string_view kIpcNs = "readlink /proc/self/ns/ipc";
constexpr std::string_view kUtsNs = "readlink /proc/self/ns/uts";
// Under the strict seccomp profile fork itself is refused, so the fork loop
// never reaches the pids limit: that answer decides nothing about it.
constexpr std::string_view kForkRefused = "refuses fork";

constexpr std::string_view kNoDaemon = "Kiln runs no Docker daemon or swarm; nothing here to judge";
constexpr std::string_view kNoExec = "Kiln has no way to enter a running jail (no exec); nothing here to judge";
constexpr std::string_view kNoImage = "Kiln runs the host's own read-only /usr, not images; nothing here to judge";

std::vector<Rule> make_rules() {
    const Framework cis = Framework::CisDocker, nist = Framework::Nist800190;
    return {
        {cis, "5.1", "Ensure swarm mode is not Enabled, if not needed", {}, kNoDaemon},
        {cis, "5.2", "Ensure that, if applicable, an AppArmor Profile is enabled", {},
         "Kiln loads no AppArmor profile; its LSM confinement is Landlock (C010), and the probe does not read "
         "/proc/self/attr/current"},
        {cis, "5.3", "Ensure that, if applicable, SELinux security options are set", {},
         "Kiln sets no SELinux label; its LSM confinement is Landlock (C010)"},
        {cis, "5.4", "Ensure that Linux kernel capabilities are restricted within containers",
         {{"C009", kCaps, kNoCaps}}},
        {cis, "5.5", "Ensure that privileged containers are not used",
         {{"C009", kCaps, kNoCaps}, {"C006"}}},
        {cis, "5.6", "Ensure sensitive host system directories are not mounted on containers",
         {{"C012", kHostPaths, "present: none"}}},
        {cis, "5.7", "Ensure sshd is not run within containers", {},
         "no probe lists the jail's processes (kiln-init starts only the requested program)"},
        {cis, "5.8", "Ensure privileged ports are not mapped within containers",
         {{"C003", kInterfaces, "lo"}}},
        {cis, "5.9", "Ensure that only needed ports are open on the container",
         {{"C003", kInterfaces, "lo"}}},
        {cis, "5.10", "Ensure that the host's network namespace is not shared", {{"C003"}}},
        {cis, "5.11", "Ensure that the memory usage for containers is limited",
         {{"C007", kMemory, {}, "killed by the memory cgroup"}}},
        {cis, "5.12", "Ensure that CPU priority is set appropriately on containers", {},
         "the CPU quota is written to the run's cgroup but no probe measures it"},
        {cis, "5.13", "Ensure that the container's root filesystem is mounted as read only", {{"C002"}}},
        {cis, "5.14", "Ensure that incoming container traffic is bound to a specific host interface",
         {{"C003", kInterfaces, "lo"}}},
        {cis, "5.15", "Ensure that the 'on-failure' container restart policy is set to '5'", {},
         "Kiln never restarts a jail; nothing here to judge"},
        {cis, "5.16", "Ensure that the host's process namespace is not shared", {{"C012", kPidNs, {}, "own "}}},
        {cis, "5.17", "Ensure that the host's IPC namespace is not shared", {{"C012", kIpcNs, {}, "own "}}},
        {cis, "5.18", "Ensure that host devices are not directly exposed to containers", {},
         "the selftest does not list the jail's /dev"},
        {cis, "5.19", "Ensure that the default ulimit is overwritten at runtime if needed", {},
         "no probe reads the jail's rlimits"},
        {cis, "5.20", "Ensure mount propagation mode is not set to shared", {},
         "no probe reads the jail's mount propagation"},
        {cis, "5.21", "Ensure that the host's UTS namespace is not shared", {{"C012", kUtsNs, {}, "own "}}},
        {cis, "5.22", "Ensure the default seccomp profile is not Disabled", {{"C006"}}},
        {cis, "5.23", "Ensure that docker exec commands are not used with the privileged option", {}, kNoExec},
        {cis, "5.24", "Ensure that docker exec commands are not used with the user=root option", {}, kNoExec},
        {cis, "5.25", "Ensure that cgroup usage is confirmed",
         {{"C007", kMemory, {}, "killed by the memory cgroup"}, {"C007", kPids, {}, "EAGAIN", {}, kForkRefused}}},
        {cis, "5.26", "Ensure that the container is restricted from acquiring additional privileges",
         {{"C009", kNnp, "1"}}},
        {cis, "5.27", "Ensure that container health is checked at runtime", {},
         "a jail lives for one run; Kiln has no health check to judge"},
        {cis, "5.28", "Ensure that Docker commands always make use of the latest version of their image", {}, kNoImage},
        {cis, "5.29", "Ensure that the PIDs cgroup limit is used", {{"C007", kPids, {}, "EAGAIN", {}, kForkRefused}}},
        {cis, "5.30", "Ensure that Docker's default bridge 'docker0' is not used", {{"C003", kInterfaces, "lo"}}},
        {cis, "5.31", "Ensure that the host's user namespaces are not shared", {{"C001"}}},
        {cis, "5.32", "Ensure that the Docker socket is not mounted inside any containers",
         {{"C012", kHostPaths, {}, "present:", "docker.sock"}}},

        {nist, "4.4.1", "Vulnerabilities within the runtime software", {},
         "Kiln does not judge whether its own build or the kernel is patched"},
        {nist, "4.4.2", "Unbounded network access from containers", {{"C003"}}},
        {nist, "4.4.3", "Insecure container runtime configurations",
         {{"C001"}, {"C002"}, {"C006"}, {"C009"}, {"C010"}}},
        {nist, "4.4.4", "App vulnerabilities (Kiln's part: known attacks refused, read-only root)",
         {{"C004"}, {"C002"}}},
        {nist, "4.4.5", "Rogue containers", {},
         "which environments run which jails is the operator's to judge"},
        {nist, "4.5.1", "Large attack surface", {}, "Kiln does not judge the host OS's installed services"},
        {nist, "4.5.2", "Shared kernel (Kiln's part: the kernel interface the jail reaches)",
         {{"C006"}, {"C009"}, {"C010"}}},
        {nist, "4.5.3", "Host OS component vulnerabilities", {}, "Kiln does not judge the host's patch level"},
        {nist, "4.5.4", "Improper user access rights (Kiln's part: jailed code is not host root)", {{"C001"}}},
        {nist, "4.5.5", "Host file system tampering", {{"C002"}, {"C012"}}},
    };
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// What a check expected, for the reason of a failed line.
std::string expectation(const Check& c) {
    if (c.probe.empty()) return "in_force";
    std::string out;
    if (!c.answer_is.empty()) out = quoted(c.answer_is);
    if (!c.answer_starts.empty()) out += (out.empty() ? "" : ", ") + std::string("starting ") + quoted(c.answer_starts);
    if (!c.answer_lacks.empty()) out += (out.empty() ? "" : ", ") + std::string("without ") + quoted(c.answer_lacks);
    return out;
}

bool answer_holds(const Check& c, std::string_view answer) {
    if (!c.answer_is.empty() && answer != c.answer_is) return false;
    if (answer.substr(0, c.answer_starts.size()) != c.answer_starts) return false;
    return c.answer_lacks.empty() || answer.find(c.answer_lacks) == std::string_view::npos;
}

bool undecided(const Check& c, std::string_view answer) {
    if (answer.substr(0, 9) == "not tried") return true;
    return !c.answer_undecided.empty() && answer.find(c.answer_undecided) != std::string_view::npos;
}

const selftest::Evidence* find_evidence(const selftest::ControlResult& control, std::string_view probe) {
    for (const auto& e : control.evidence)
        if (std::string_view(e.probe).substr(0, probe.size()) == probe) return &e;
    return nullptr;
}

// A control's status decides: only in_force passes.
Decision decide_by_status(const selftest::ControlResult& control) {
    Decision d{control.id, "status", std::string(selftest::to_string(control.status)), Verdict::Fail};
    if (control.status == ControlStatus::InForce) d.verdict = Verdict::Pass;
    else d.note = control.summary;
    return d;
}

Decision decide(const Check& check, const selftest::Report& report) {
    const selftest::ControlResult* control = report.find(check.control);
    if (!control)
        return {std::string(check.control), std::string(check.probe), "the selftest did not report this control",
                Verdict::NotAssessed};
    if (check.probe.empty()) return decide_by_status(*control);
    const selftest::Evidence* e = find_evidence(*control, check.probe);
    if (!e)
        return {control->id, std::string(check.probe), "no such evidence in the selftest report", Verdict::NotAssessed};
    Decision d{control->id, e->probe, e->answer, Verdict::Fail};
    if (control->status == ControlStatus::Missing) d.note = control->id + " is missing: " + control->summary;
    else if (undecided(check, e->answer)) d.verdict = Verdict::NotAssessed;
    else if (answer_holds(check, e->answer)) d.verdict = Verdict::Pass;
    else d.note = "expected " + expectation(check);
    return d;
}

// The line's verdict: any failed check fails it, then any undecided one
// leaves it not assessed; it passes only when every check passed.
Line judge(const Rule& rule, const selftest::Report& report) {
    Line line{&rule, Verdict::NotAssessed, std::string(rule.unassessed), {}};
    if (rule.checks.empty()) return line;
    for (const auto& c : rule.checks) line.decided_by.push_back(decide(c, report));
    auto first = [&](Verdict v) {
        for (size_t i = 0; i < line.decided_by.size(); ++i)
            if (line.decided_by[i].verdict == v) return int(i);
        return -1;
    };
    int i = first(Verdict::Fail);
    if (i < 0) i = first(Verdict::NotAssessed);
    if (i < 0) {
        line.verdict = Verdict::Pass;
        for (const auto& d : line.decided_by)
            line.reason += (line.reason.empty() ? "" : "; ") + d.control + " " + d.probe + ": " + d.answer;
        return line;
    }
    const Decision& d = line.decided_by[size_t(i)];
    line.verdict = d.verdict;
    line.reason = d.control + " " + d.probe + ": " + d.answer + (d.note.empty() ? "" : " (" + d.note + ")");
    return line;
}

std::string_view source(Framework f) {
    switch (f) {
        case Framework::CisDocker: return "CIS Docker Benchmark v1.6.0, section 5 (Container Runtime)";
        case Framework::Nist800190:
            return "NIST SP 800-190 (September 2017), sections 4.4 and 4.5 (container and host OS countermeasures)";
    }
    return "";
}

}  // namespace

std::string_view to_string(Framework f) {
    switch (f) {
        case Framework::CisDocker: return "cis-docker-1.6.0";
        case Framework::Nist800190: return "nist-sp-800-190";
    }
    return "";
}

std::string_view to_string(Verdict v) {
    switch (v) {
        case Verdict::Pass: return "pass";
        case Verdict::Fail: return "fail";
        case Verdict::NotAssessed: return "not assessed";
    }
    return "not assessed";
}

const std::vector<Rule>& rules() {
    static const std::vector<Rule> all = make_rules();
    return all;
}

int Table::count(Verdict v) const {
    return int(std::count_if(lines.begin(), lines.end(), [v](const Line& l) { return l.verdict == v; }));
}

Table assess(const selftest::Report& report) {
    Table t;
    for (const auto& r : rules()) t.lines.push_back(judge(r, report));
    return t;
}

json to_json(const Table& table, const selftest::Report& report) {
    json lines = json::array();
    for (const auto& l : table.lines) {
        json by = json::array();
        for (const auto& d : l.decided_by)
            by.push_back({{"control", d.control}, {"probe", d.probe}, {"answer", d.answer}, {"note", d.note},
                          {"verdict", std::string(to_string(d.verdict))}});
        lines.push_back({{"framework", std::string(to_string(l.rule->framework))},
                         {"section", std::string(l.rule->section)},
                         {"title", std::string(l.rule->title)},
                         {"verdict", std::string(to_string(l.verdict))},
                         {"reason", l.reason},
                         {"decided_by", by}});
    }
    json sources = json::object();
    for (Framework f : {Framework::CisDocker, Framework::Nist800190})
        sources[std::string(to_string(f))] = std::string(source(f));
    return {{"runtime", report.runtime}, {"rootless", report.rootless}, {"policy", report.policy},
            {"sources", sources},        {"lines", lines},
            {"summary", {{"pass", table.count(Verdict::Pass)}, {"fail", table.count(Verdict::Fail)},
                         {"not_assessed", table.count(Verdict::NotAssessed)}}}};
}

std::string to_table(const Table& table, const selftest::Report& report) {
    std::ostringstream out;
    out << "runtime " << report.runtime << (report.rootless ? " (rootless)" : " (root)") << ", policy " << report.policy
        << "; each line decided by the live selftest (docs/compliance.md)\n";
    const Framework* last = nullptr;
    for (const auto& l : table.lines) {
        if (!last || *last != l.rule->framework) out << "\n" << source(l.rule->framework) << "\n";
        last = &l.rule->framework;
        std::string verdict(to_string(l.verdict));
        out << "  " << l.rule->section << std::string(7 - std::min<size_t>(6, l.rule->section.size()), ' ') << verdict
            << std::string(14 - verdict.size(), ' ') << l.rule->title << "\n";
        out << "         " << l.reason << "\n";
    }
    out << "\n" << table.count(Verdict::Pass) << " pass, " << table.count(Verdict::Fail) << " fail, "
        << table.count(Verdict::NotAssessed) << " not assessed\n";
    return out.str();
}

}  // namespace kiln::security::compliance
