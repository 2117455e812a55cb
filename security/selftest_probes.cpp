#include "security/selftest_probes.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <sstream>

#include "common/unique_fd.hpp"
#include "common/units.hpp"
#include "sandbox/landlock.hpp"
#include "security/audit/verify.hpp"
#include "security/run_limits.hpp"

namespace kiln::security::selftest::probes {
namespace {

using namespace std::chrono_literals;

std::map<std::string, std::string> parse_lines(const std::string& text) {
    std::map<std::string, std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        auto sp = line.find(' ');
        if (sp != std::string::npos) out[line.substr(0, sp)] = line.substr(sp + 1);
    }
    return out;
}

JailRun run_jail(const Options& options, const sandbox::SandboxSpec& spec) {
    JailRun r;
    for (const auto& a : spec.argv) r.argv += (r.argv.empty() ? "" : " ") + a;
    auto res = options.runtime->run(spec, {});
    if (!res) {
        r.error = res.error().what();
        return r;
    }
    r.result = std::move(*res);
    r.facts = parse_lines(r.result.stdout_data);
    return r;
}

// A TCP listener on the host's 127.0.0.1 at a port the kernel picks: the
// jail's connect() must not reach it. Non-blocking, so accept() tells at
// once whether anything did.
Result<UniqueFd> host_listener(int& port) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return sys_error("socket", "the selftest's host listener");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd.get(), 4) != 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
        return sys_error("listen 127.0.0.1:0", "the selftest's host listener");
    port = ntohs(a.sin_port);
    return fd;
}

bool someone_connected(int listener) {
    UniqueFd peer(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
    return bool(peer);
}

std::uint64_t host_ram_bytes() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    std::uint64_t kib = 0;
    while (in >> key >> kib) {
        if (key == "MemTotal:") return kib * 1024;
        in.ignore(256, '\n');
    }
    return 0;
}

// Past the limit by 64 MiB: the cgroup must kill the jail. A limit at or
// above half the host's RAM is not exceeded on purpose: that would press the
// host itself, and such a limit bounds little anyway (the judge says so).
MemoryRun memory_probe(const Options& options, const std::string& probe_path) {
    MemoryRun m;
    auto spec = probe_spec(options, probe_path, {});
    m.limit_bytes = spec.limits.memory_bytes;
    m.host_ram_bytes = host_ram_bytes();
    if (m.host_ram_bytes == 0 || m.limit_bytes >= m.host_ram_bytes / 2) {
        m.skipped = "not tried: the limit " + format_size(m.limit_bytes) + " is at or above half the host's RAM (" +
                    format_size(m.host_ram_bytes) + "); exceeding it would press the host";
        return m;
    }
    m.asked_bytes = m.limit_bytes + (64ull << 20);
    spec.argv = {kProbeInJail, "memhog", std::to_string(m.asked_bytes >> 20)};
    m.run = run_jail(options, spec);
    return m;
}

// The policy's timeout is tens of seconds: the probe arms the same timer
// with 300 ms and sleeps 10 s, so the selftest stays fast.
TimeoutRun timeout_probe(const Options& options, const std::string& probe_path) {
    TimeoutRun t;
    t.timeout = 300ms;
    auto spec = probe_spec(options, probe_path, {"sleep", "10000"});
    spec.limits.timeout = t.timeout;
    t.run = run_jail(options, spec);
    return t;
}

Status append_and_verify(audit::AuditLog& log, AuditProbe& p) {
    p.path = log.path();
    auto ref = log.append("selftest", {{"action", "probe"}});
    if (!ref) {
        p.append = ref.error().what();
        return {};
    }
    p.appended = true;
    p.append = "seq " + std::to_string(ref->seq) + " (id " + ref->id + ")";
    audit::VerifyOptions vo;
    vo.allow_partial = true;  // the active file only: rotated ones were verified when they were active
    auto r = audit::verify_chain({log.path()}, vo);
    if (!r) {
        p.verify = r.error().what();
    } else if (!r->intact) {
        p.verify = "broken at " + r->file + ":" + std::to_string(r->line) + ": " + r->problem;
    } else {
        p.verified = r->last_seq >= ref->seq;
        p.verify = std::to_string(r->records) + " records, seq " + std::to_string(r->first_seq) + ".." +
                   std::to_string(r->last_seq) + ", hash chain intact" +
                   (p.verified ? "" : ", but the probe's record is not in it");
    }
    return {};
}

AuditProbe audit_probe(const Options& options) {
    AuditProbe p;
    p.path = options.config->audit.path;
    if (options.audit) {
        (void)append_and_verify(*options.audit, p);
        return p;
    }
    auto log = audit::AuditLog::open(options.config->audit);
    if (!log) {
        p.append = log.error().what();
        return p;
    }
    (void)append_and_verify(**log, p);
    return p;
}

void read_swaps(Measurements& m) {
    std::ifstream in("/proc/swaps");
    if (!in) return;
    m.swaps_read = true;
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string device, type;
        words >> device >> type;
        if (!device.empty()) m.swaps += (m.swaps.empty() ? "" : ", ") + device + " (" + type + ")";
    }
}

}  // namespace

std::string JailRun::fact(const std::string& key) const {
    if (!ran()) return "the jail did not run: " + error;
    auto it = facts.find(key);
    if (it != facts.end()) return it->second;
    std::string how = result.exit_code ? "exit " + std::to_string(*result.exit_code)
                                       : result.signal ? "signal " + std::to_string(*result.signal) : "no status";
    return "no answer (the probe ended with " + how + ")";
}

sandbox::SandboxSpec probe_spec(const Options& options, const std::string& probe_path, std::vector<std::string> args) {
    sandbox::SandboxSpec spec;
    security::apply_run_limits(spec, *options.policy, options.config->sandbox);
    spec.cwd = "/tmp";
    spec.mounts.push_back({probe_path, kProbeInJail, false});
    spec.argv = {kProbeInJail};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    return spec;
}

// On a root tree (sandbox.rootfs, an imported image) /home, /root, /var...
// are the tree's own: a path the jail shows came from the host only when
// the tree lacks it.
void discount_root_tree(JailRun& facts, const std::string& rootfs) {
    auto it = facts.facts.find("host_paths");
    if (rootfs.empty() || it == facts.facts.end() || it->second == "none") return;
    std::string kept;
    std::istringstream in(it->second);
    for (std::string p; std::getline(in, p, ',');) {
        struct stat st {};
        if (::lstat((rootfs + p).c_str(), &st) != 0) kept += (kept.empty() ? "" : ",") + p;
    }
    it->second = kept.empty() ? "none" : kept;
}

Result<Measurements> measure(const Options& options, const std::string& probe_path) {
    Measurements m;
    m.caps = options.runtime->capabilities();
    m.landlock_abi = sandbox::landlock::probe_abi();
    auto listener = host_listener(m.listener_port);
    if (!listener) return listener.error();
    // The three jails run at once (the runtime is thread-safe): the
    // selftest then takes about as long as its 300 ms timeout probe.
    auto memory = std::async(std::launch::async, [&] { return memory_probe(options, probe_path); });
    auto timeout = std::async(std::launch::async, [&] { return timeout_probe(options, probe_path); });
    m.spec = probe_spec(options, probe_path, {"facts", std::to_string(m.listener_port)});
    m.facts = run_jail(options, m.spec);
    discount_root_tree(m.facts, m.spec.rootfs);
    m.listener_reached = someone_connected(listener->get());
    m.audit = audit_probe(options);
    m.memory = memory.get();
    m.timeout = timeout.get();
    read_swaps(m);
    return m;
}

}  // namespace kiln::security::selftest::probes
