// Drives the audit library from outside the test process.
//   audit_driver append PATH COUNT PAD [ROTATE_BYTES]  appends COUNT records
//       (fsync always, or $KILN_AUDIT_DRIVER_FSYNC) of PAD bytes each, printing "SEQ I" once each append
//       returns; the kill -9 test kills it mid-burst, the writers test runs
//       several at once
//   audit_driver verify PATH            prints the verifier's verdict on the
//       chain PATH.1 ... PATH.N PATH
//   audit_driver sample PATH [HMAC_KEY_FILE [SEAL_KEY_FILE]]  writes a small
//       session of tool_call / decision / execution records in the schema
//       of docs/audit.md, for the CLI test
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "security/audit/audit_log.hpp"
#include "security/audit/files.hpp"
#include "security/audit/verify.hpp"

namespace {

int append(const std::string& path, long count, std::size_t pad, std::uint64_t rotate_bytes) {
    kiln::AuditConfig cfg;
    cfg.path = path;
    // The power-cut test runs a control with "never" to show it can tell.
    const char* mode = std::getenv("KILN_AUDIT_DRIVER_FSYNC");
    cfg.fsync = mode ? mode : "always";
    cfg.rotate_bytes = rotate_bytes;
    // The CLI test writes several replicas' chains.
    if (const char* replica = std::getenv("KILN_AUDIT_DRIVER_REPLICA")) cfg.replica = replica;
    auto log = kiln::audit::AuditLog::open(cfg);
    if (!log) {
        std::cerr << log.error().what() << "\n";
        return 1;
    }
    const std::string padding(pad, 'p');
    for (long i = 0; i < count; ++i) {
        auto ref = (*log)->append("execution", {{"pid", ::getpid()}, {"i", i}, {"output", padding}});
        if (!ref) {
            std::cerr << ref.error().what() << "\n";
            return 1;
        }
        // One write(2) per acknowledgement so a kill never splits it.
        std::string ack = std::to_string(ref->seq) + " " + std::to_string(i) + "\n";
        if (::write(1, ack.data(), ack.size()) != static_cast<ssize_t>(ack.size())) return 1;
    }
    return 0;
}

// Two calls: one allowed and run, one denied for a T003 finding.
int sample(const std::string& path, const std::string& hmac_key_file, const std::string& seal_key_file) {
    kiln::AuditConfig cfg;
    cfg.path = path;
    cfg.hmac_key_file = hmac_key_file;
    cfg.seal_key_file = seal_key_file;
    auto log = kiln::audit::AuditLog::open(cfg);
    if (!log) {
        std::cerr << log.error().what() << "\n";
        return 1;
    }
    auto& a = **log;
    nlohmann::json client = {{"name", "claude-code"}, {"version", "1.0"}};
    bool ok = a.append("session", {{"action", "start"}, {"session_id", "s-alpha"}, {"client", client}}).ok();
    auto call = a.append("tool_call", {{"session_id", "s-alpha"}, {"client", client}, {"tool", "run_code"},
                                       {"language", "python"}, {"code", "print(sum(range(10)))\n"}});
    ok = ok && call.ok();
    nlohmann::json low = {{"id", "T001"}, {"name", "sandbox escape"}, {"score", 2}, {"level", "low"}, {"mitigated", true}};
    ok = ok && a.append("decision", {{"session_id", "s-alpha"}, {"call_id", call->id}, {"tool", "run_code"},
                                     {"decision", "allow"}, {"reasons", {"no findings"}}, {"threats", {low}},
                                     {"risk", "low"}, {"controls_in_force", {"C001", "C011"}}})
                     .ok();
    ok = ok && a.append("execution", {{"session_id", "s-alpha"}, {"call_id", call->id}, {"tool", "run_code"},
                                      {"sandbox", {{"runtime", "native"}, {"limits", {{"memory_bytes", 268435456}}}}},
                                      {"result", {{"exit_code", 0}, {"signal", 0}, {"timed_out", false},
                                                  {"oom_killed", false}, {"duration_ms", 42}, {"cpu_ms", 30},
                                                  {"stdout_bytes", 3}, {"stderr_bytes", 0}}},
                                      {"timings", {{"validate_us", 150}, {"setup_us", 9000}, {"run_us", 42000},
                                                   {"teardown_us", 800}}}})
                     .ok();
    auto call2 = a.append("tool_call", {{"session_id", "s-beta"}, {"client", client}, {"tool", "run_command"},
                                        {"language", "shell"}, {"code", "curl http://169.254.169.254/latest/meta-data/"}});
    ok = ok && call2.ok();
    nlohmann::json finding = {{"rule", "net.metadata_endpoint"}, {"threat", "T003"}, {"severity", "high"},
                              {"line", 1}, {"column", 6}, {"message", "reads the cloud metadata endpoint"}};
    nlohmann::json t3 = {{"id", "T003"}, {"name", "exfiltration"}, {"score", 12}, {"level", "high"}, {"mitigated", false}};
    ok = ok && a.append("decision", {{"session_id", "s-beta"}, {"call_id", call2->id}, {"tool", "run_command"},
                                     {"decision", "deny"}, {"reasons", {"cloud metadata endpoint"}},
                                     {"findings", {finding}}, {"threats", {low, t3}},
                                     {"risk", "high"}})
                     .ok();
    std::cout << call->id << " " << call2->id << "\n";
    return ok ? 0 : 1;
}

int verify(const std::string& path) {
    auto r = kiln::audit::verify_chain(kiln::audit::chain_files(path), {});
    if (!r) {
        std::cerr << r.error().what() << "\n";
        return 1;
    }
    std::cout << (r->intact ? "intact " : "broken ") << r->records << " line " << r->line << " " << r->problem << "\n";
    return r->intact ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "append" && (argc == 5 || argc == 6))
        return append(argv[2], std::atol(argv[3]), std::strtoul(argv[4], nullptr, 10),
                      argc == 6 ? std::strtoull(argv[5], nullptr, 10) : 0);
    if (mode == "verify" && argc == 3) return verify(argv[2]);
    if (mode == "sample" && argc >= 3 && argc <= 5)
        return sample(argv[2], argc > 3 ? argv[3] : "", argc > 4 ? argv[4] : "");
    std::cerr << "usage: audit_driver append PATH COUNT PAD [ROTATE_BYTES] | verify PATH | sample PATH [HMAC_KEY [SEAL_KEY]]\n";
    return 64;
}
