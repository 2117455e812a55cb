// The selftest's measurements (selftest_probes.cpp): each probe a function
// that does one thing for real and keeps what was answered. selftest.cpp
// judges them into control statuses; nothing here decides a status.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "security/selftest.hpp"

namespace kiln::security::selftest::probes {

// One jail run of kiln-probe: its "key value" lines, or why it did not run.
struct JailRun {
    std::string argv;   // as an operator would type it
    std::string error;  // the runtime's error; empty when the jail ran
    sandbox::ExecResult result;
    std::map<std::string, std::string> facts;

    bool ran() const { return error.empty(); }
    // The answer to `key`, or a sentence saying the probe gave none.
    std::string fact(const std::string& key) const;
};

// The memory probe: skipped (with the reason) when the limit is too large to
// exceed without pressing the host.
struct MemoryRun {
    std::optional<JailRun> run;
    std::uint64_t limit_bytes = 0, asked_bytes = 0, host_ram_bytes = 0;
    std::string skipped;
};

struct TimeoutRun {
    JailRun run;
    std::chrono::milliseconds timeout{};
};

struct AuditProbe {
    std::string path;
    std::string append;  // "seq N (id ...)" or the error
    bool appended = false;
    bool verified = false;
    std::string verify;  // "N records intact, HMAC checked" or the break
};

struct Measurements {
    sandbox::HostCapabilities caps;
    sandbox::SandboxSpec spec;  // what the facts jail got
    int landlock_abi = 0;
    int listener_port = 0;
    bool listener_reached = false;
    JailRun facts;
    MemoryRun memory;
    TimeoutRun timeout;
    AuditProbe audit;
    std::string swaps;  // the devices in /proc/swaps, "" when none
    bool swaps_read = false;
};

// Runs every probe once. An Error only when none can run.
Result<Measurements> measure(const Options& options, const std::string& probe_path);

// The spec every probe jail starts from: the effective policy's limits, the
// configured root and ids, kiln-probe bound at kProbeInJail.
inline constexpr const char* kProbeInJail = "/kiln/probe";
sandbox::SandboxSpec probe_spec(const Options& options, const std::string& probe_path, std::vector<std::string> args);

}  // namespace kiln::security::selftest::probes
