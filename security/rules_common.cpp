// Rules shared by every language: sensitive paths in string constants, and
// the plumbing that turns a rule hit into a Finding.
#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

#include "common/text.hpp"
#include "security/rules.hpp"

namespace kiln::security::detail {

namespace {

enum class Match { Contains, Prefix, Exact, Suffix };

struct PathRule {
    std::string_view pattern;
    Match match;
    const char* rule;
    const char* threat;
    Severity severity;
    const char* message;
    const char* hint;
};

constexpr const char* kCredHint = "Work only with files the user put in /workspace; credentials are not available in the sandbox.";
constexpr const char* kHostHint = "Code in Kiln cannot reach the host or the kernel's interfaces; remove this access.";

// Ordered most specific first; the first match per string wins.
constexpr std::array<PathRule, 38> kPathRules{{
    {"/dev/tcp/", Match::Contains, "net.dev-tcp", "T005", Severity::Critical, "bash /dev/tcp socket (reverse-shell pattern)", "The sandbox has no network; do not open sockets."},
    {"/dev/udp/", Match::Contains, "net.dev-tcp", "T005", Severity::Critical, "bash /dev/udp socket (exfiltration pattern)", "The sandbox has no network; do not open sockets."},
    {"docker.sock", Match::Contains, "host.container-socket", "T001", Severity::Critical, "container runtime socket (full host control)", kHostHint},
    {"containerd.sock", Match::Contains, "host.container-socket", "T001", Severity::Critical, "container runtime socket (full host control)", kHostHint},
    {"/proc/sysrq-trigger", Match::Contains, "kernel.proc-sysrq", "T001", Severity::Critical, "kernel SysRq trigger", kHostHint},
    {"/proc/kcore", Match::Contains, "kernel.memory-device", "T001", Severity::Critical, "kernel memory image", kHostHint},
    {"/dev/mem", Match::Exact, "kernel.memory-device", "T001", Severity::Critical, "physical memory device", kHostHint},
    {"/dev/kmem", Match::Exact, "kernel.memory-device", "T001", Severity::Critical, "kernel memory device", kHostHint},
    {"/dev/port", Match::Exact, "kernel.memory-device", "T001", Severity::Critical, "I/O port device", kHostHint},
    {"release_agent", Match::Contains, "kernel.cgroup-release-agent", "T001", Severity::Critical, "cgroup release_agent (classic container escape)", kHostHint},
    {"core_pattern", Match::Contains, "kernel.core-pattern", "T001", Severity::Critical, "kernel core_pattern (runs a program as host root)", kHostHint},
    {"/proc/1/root", Match::Prefix, "host.proc-pid1", "T001", Severity::High, "the init process's root or namespaces", kHostHint},
    {"/proc/1/ns", Match::Prefix, "host.proc-pid1", "T001", Severity::High, "the init process's root or namespaces", kHostHint},
    {"/proc/sys", Match::Prefix, "kernel.proc-sys", "T001", Severity::High, "kernel tunables under /proc/sys", kHostHint},
    {"/sys/", Match::Prefix, "kernel.sysfs", "T001", Severity::High, "kernel objects under /sys", kHostHint},
    {"/lib/modules", Match::Prefix, "kernel.modules", "T001", Severity::High, "kernel modules directory", kHostHint},
    {"/dev/sd", Match::Prefix, "host.block-device", "T001", Severity::High, "raw block device", kHostHint},
    {"/dev/nvme", Match::Prefix, "host.block-device", "T001", Severity::High, "raw block device", kHostHint},
    {"/dev/vd", Match::Prefix, "host.block-device", "T001", Severity::High, "raw block device", kHostHint},
    {"/dev/xvd", Match::Prefix, "host.block-device", "T001", Severity::High, "raw block device", kHostHint},
    {"/etc/sudoers", Match::Prefix, "priv.sudoers", "T004", Severity::High, "sudoers configuration", "Nothing in the sandbox runs as root; do not try to gain privileges."},
    {"/etc/shadow", Match::Contains, "cred.shadow", "T005", Severity::High, "password hash file", kCredHint},
    {"/etc/gshadow", Match::Contains, "cred.shadow", "T005", Severity::High, "password hash file", kCredHint},
    {"/.ssh", Match::Contains, "cred.ssh", "T005", Severity::High, "SSH keys directory", kCredHint},
    {".ssh", Match::Exact, "cred.ssh", "T005", Severity::High, "SSH keys directory", kCredHint},
    {"id_rsa", Match::Contains, "cred.ssh", "T005", Severity::High, "SSH private key", kCredHint},
    {"id_ed25519", Match::Contains, "cred.ssh", "T005", Severity::High, "SSH private key", kCredHint},
    {"id_ecdsa", Match::Contains, "cred.ssh", "T005", Severity::High, "SSH private key", kCredHint},
    {"/.aws", Match::Contains, "cred.cloud", "T005", Severity::High, "cloud credentials", kCredHint},
    {".aws", Match::Exact, "cred.cloud", "T005", Severity::High, "cloud credentials", kCredHint},
    {"/.config/gcloud", Match::Contains, "cred.cloud", "T005", Severity::High, "cloud credentials", kCredHint},
    {"/.kube/config", Match::Contains, "cred.cloud", "T005", Severity::High, "Kubernetes credentials", kCredHint},
    {"/.docker/config.json", Match::Contains, "cred.cloud", "T005", Severity::High, "registry credentials", kCredHint},
    {".netrc", Match::Contains, "cred.file", "T005", Severity::High, "stored login credentials", kCredHint},
    {".git-credentials", Match::Contains, "cred.file", "T005", Severity::High, "stored login credentials", kCredHint},
    {".env", Match::Exact, "cred.dotenv", "T005", Severity::High, ".env secrets file", kCredHint},
    {"/.env", Match::Suffix, "cred.dotenv", "T005", Severity::High, ".env secrets file", kCredHint},
    {"/environ", Match::Suffix, "cred.proc-environ", "T005", Severity::High, "another process's environment", kCredHint},
}};

// How rarely a byte appears in code, roughly: path punctuation is
// everywhere, letters go by English frequency, anything else is rare.
constexpr int rarity(char c) {
    constexpr std::string_view kLettersByFrequency = "etaoinsrhldcumfpgwybvkxjqz";
    if (c == '/' || c == '.' || c == '_' || c == '-') return 0;
    auto at = kLettersByFrequency.find(c);
    return at == std::string_view::npos ? 27 : static_cast<int>(at) + 1;
}

// Adjacent byte pairs, hashed into a small table.
constexpr std::size_t kBigramSlots = 1024;
constexpr std::size_t bigram_slot(char a, char b) {
    return ((static_cast<std::size_t>(static_cast<unsigned char>(a)) << 5) ^ static_cast<unsigned char>(b)) %
           kBigramSlots;
}

// The rarest pair of adjacent bytes in a pattern (the first on ties), other
// than the pair at `except` (npos for none). A pattern has at least two
// distinct pairs or else repeats its only one.
constexpr std::size_t rarest_bigram(std::string_view p, std::size_t except) {
    std::size_t best = std::string_view::npos;
    auto score = [&](std::size_t i) { return rarity(p[i]) + rarity(p[i + 1]); };
    for (std::size_t i = 0; i + 1 < p.size(); ++i) {
        if (except != std::string_view::npos && p.substr(i, 2) == p.substr(except, 2)) continue;
        if (best == std::string_view::npos || score(i) > score(best)) best = i;
    }
    return best == std::string_view::npos ? except : best;
}

// For each bigram slot, the rules (as a mask of rule indexes) whose rarest
// byte pair, or second rarest, hashes there. A value can only match a rule
// when it holds both pairs: one pass over the value, two table lookups per
// byte, leaves very few rules to search for (none for most values).
struct KeyTables {
    std::array<std::uint64_t, kBigramSlots> rarest{}, second{};
};
static_assert(kPathRules.size() <= 64, "rule masks are 64 bits");
constexpr KeyTables kRuleKeys = [] {
    KeyTables t;
    for (std::size_t i = 0; i < kPathRules.size(); ++i) {
        const std::string_view p = kPathRules[i].pattern;
        const std::size_t first = rarest_bigram(p, std::string_view::npos);
        const std::size_t second = rarest_bigram(p, first);
        t.rarest[bigram_slot(p[first], p[first + 1])] |= std::uint64_t{1} << i;
        t.second[bigram_slot(p[second], p[second + 1])] |= std::uint64_t{1} << i;
    }
    return t;
}();

bool matches(const PathRule& r, std::string_view v) {
    switch (r.match) {
        case Match::Contains: return v.find(r.pattern) != std::string_view::npos;
        case Match::Prefix: return v.substr(0, r.pattern.size()) == r.pattern;
        case Match::Exact: return v == r.pattern;
        case Match::Suffix:
            return v.size() >= r.pattern.size() && v.substr(v.size() - r.pattern.size()) == r.pattern;
    }
    return false;
}

// /proc/<pid>/environ and /proc/self/environ; not ".../environ" elsewhere.
bool is_proc_environ(std::string_view v) { return v.substr(0, 6) == "/proc/"; }

// Messages quote the code; a decoded escape ('\xff') can make that quote
// invalid UTF-8, which JSON cannot carry. Such bytes become '?'.
std::string printable(std::string text) {
    if (is_valid_utf8(text)) return text;
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        std::size_t len = 1;
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0xF0) len = 4;
        else if (c >= 0xE0) len = 3;
        else if (c >= 0xC0) len = 2;
        if (c >= 0x80 && (i + len > text.size() || !is_valid_utf8(std::string_view(text).substr(i, len)))) {
            out += '?';
            ++i;
            continue;
        }
        out.append(text, i, len);
        i += len;
    }
    return out;
}

}  // namespace

void check_sensitive_string(const Token& tok, std::string_view value, Findings& out) {
    // Strings longer than any path are data (a CSV blob, a prompt), not
    // a path an open() would take.
    if (value.empty() || value.size() > 4096) return;
    // This runs on every string and word: one pass over the value finds the
    // few rules it could match, in rule order, before any pattern search.
    std::uint64_t with_rarest = 0, with_second = 0;
    for (std::size_t k = 1; k < value.size(); ++k) {
        const std::size_t slot = bigram_slot(value[k - 1], value[k]);
        with_rarest |= kRuleKeys.rarest[slot];
        with_second |= kRuleKeys.second[slot];
    }
    for (std::uint64_t candidates = with_rarest & with_second; candidates != 0; candidates &= candidates - 1) {
        const auto i = static_cast<std::size_t>(std::countr_zero(candidates));
        const PathRule& r = kPathRules[i];
        if (!matches(r, value)) continue;
        if (std::string_view(r.rule) == "cred.proc-environ" && !is_proc_environ(value)) continue;
        out.add(r.rule, r.threat, r.severity, tok, std::string(r.message) + ": " + std::string(value.substr(0, 120)),
                r.hint);
        return;
    }
}

bool is_dangerous_attribute(std::string_view name) {
    static constexpr std::string_view kNames[] = {
        "system", "popen", "popen2", "popen3", "execv", "execve", "execvp", "execvpe", "execl", "execle",
        "execlp", "execlpe", "spawnv", "spawnve", "spawnl", "spawnle", "spawnlp", "spawnvp", "fork", "forkpty",
        "eval", "exec", "compile", "__import__", "execfile", "getoutput", "getstatusoutput", "check_output",
        "check_call", "call", "run", "Popen", "setuid", "setgid", "seteuid", "setreuid", "setresuid",
        "__builtins__", "__globals__", "__subclasses__", "__code__", "load_module", "import_module",
        "execSync", "execFile", "execFileSync", "spawn", "spawnSync", "Function", "child_process",
        "dlopen", "binding", "ptrace", "mount", "unshare", "setns", "chroot"};
    return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

void Findings::add(std::string rule, std::string threat, Severity severity, const Token& at, std::string message,
                   std::string hint) {
    add_at(std::move(rule), std::move(threat), severity, at.line, at.column, std::move(message), std::move(hint));
}

void Findings::add_at(std::string rule, std::string threat, Severity severity, int line, int column,
                      std::string message, std::string hint, std::vector<std::string> controls) {
    // A pathological input could produce a finding per token; past this
    // many, more findings add nothing to the decision and cost memory.
    // (Checked first: a full list is the case where the scan below is longest.)
    if (list_.size() >= 200) return;
    for (const auto& f : list_)
        if (f.line == line && f.column == column && f.rule == rule) return;
    if (controls.empty()) {
        if (const auto* t = threat_model::catalogue().find_threat(threat)) controls = t->controls;
    }
    list_.push_back(Finding{std::move(rule), std::move(threat), std::move(controls), severity, line, column,
                            printable(std::move(message)), std::move(hint)});
}

void Findings::analyze_nested(Language language, std::string_view code, const Token& at) {
    if (!can_nest()) return;
    Findings inner(policy_, depth_ + 1);
    switch (language) {
        case Language::Python: rules_python(tokenize_python(code).tokens, inner); break;
        case Language::Shell: rules_shell(tokenize_shell(code).tokens, inner); break;
        case Language::JavaScript: rules_javascript(tokenize_javascript(code).tokens, inner); break;
    }
    for (auto& f : inner.list()) {
        add_at(f.rule, f.threat, f.severity, at.line, at.column,
               f.message + " (in embedded " + to_string(language) + " code)", f.hint, f.controls);
    }
}

}  // namespace kiln::security::detail
