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

// What touching the path says. Host: risky, also done by ordinary programs
// (reading /proc/sys or /sys). Attack: an escape or escalation technique
// with no ordinary use (an attack signature). Secret: a credential, which
// counts with network use as credential exfiltration. Socket: a network
// socket that is itself a reverse-shell technique.
enum class PathKind { Host, Attack, Secret, Socket };

struct PathRule {
    std::string_view pattern;
    Match match;
    PathKind kind;
    const char* rule;
    const char* threat;
    Severity severity;
    const char* message;
    const char* hint;
};

constexpr const char* kCredHint = "Work only with files the user put in /workspace; credentials are not available in the sandbox.";
constexpr const char* kHostHint = "Code in Kiln cannot reach the host or the kernel's interfaces; remove this access.";
constexpr const char* kSocketHint = "The sandbox has no network; do not open sockets.";
constexpr const char* kToolHint = "Kiln runs code for the user's task; do not run container-escape tooling.";

using enum Match;
using enum PathKind;

// Ordered most specific first; the first match per string wins.
constexpr std::array<PathRule, 45> kPathRules{{
    {"/dev/tcp/", Contains, Socket, "net.dev-tcp", "T005", Severity::Critical, "bash /dev/tcp socket (reverse-shell pattern)", kSocketHint},
    {"/dev/udp/", Contains, Socket, "net.dev-tcp", "T005", Severity::Critical, "bash /dev/udp socket (exfiltration pattern)", kSocketHint},
    {"docker.sock", Contains, Attack, "host.container-socket", "T001", Severity::Critical, "container runtime socket (full host control)", kHostHint},
    {"containerd.sock", Contains, Attack, "host.container-socket", "T001", Severity::Critical, "container runtime socket (full host control)", kHostHint},
    {"/proc/sysrq-trigger", Contains, Attack, "kernel.proc-sysrq", "T001", Severity::Critical, "kernel SysRq trigger", kHostHint},
    {"/proc/kcore", Contains, Attack, "kernel.memory-device", "T001", Severity::Critical, "kernel memory image", kHostHint},
    {"/dev/mem", Exact, Attack, "kernel.memory-device", "T001", Severity::Critical, "physical memory device", kHostHint},
    {"/dev/kmem", Exact, Attack, "kernel.memory-device", "T001", Severity::Critical, "kernel memory device", kHostHint},
    {"/dev/port", Exact, Attack, "kernel.memory-device", "T001", Severity::Critical, "I/O port device", kHostHint},
    {"release_agent", Contains, Attack, "kernel.cgroup-release-agent", "T001", Severity::Critical, "cgroup release_agent (classic container escape)", kHostHint},
    {"core_pattern", Contains, Attack, "kernel.core-pattern", "T001", Severity::Critical, "kernel core_pattern (runs a program as host root)", kHostHint},
    {"/proc/sys/kernel/modprobe", Prefix, Attack, "kernel.modprobe-path", "T001", Severity::Critical, "kernel modprobe path (runs a program as host root)", kHostHint},
    {"uevent_helper", Contains, Attack, "kernel.uevent-helper", "T001", Severity::Critical, "kernel uevent helper (runs a program as host root)", kHostHint},
    {"binfmt_misc", Contains, Attack, "kernel.binfmt-misc", "T001", Severity::High, "binfmt_misc interpreter registration (container escape)", kHostHint},
    {"deepce.sh", Contains, Attack, "escape.tooling", "T001", Severity::High, "container-escape tool (deepce)", kToolHint},
    {"stealthcopter/deepce", Contains, Attack, "escape.tooling", "T001", Severity::High, "container-escape tool (deepce)", kToolHint},
    {"amicontained", Contains, Attack, "escape.tooling", "T001", Severity::High, "container-escape reconnaissance tool (amicontained)", kToolHint},
    {"cdk_linux", Contains, Attack, "escape.tooling", "T001", Severity::High, "container-escape toolkit (CDK)", kToolHint},
    {"/proc/1/root", Prefix, Attack, "host.proc-pid1", "T001", Severity::High, "the init process's root or namespaces", kHostHint},
    {"/proc/1/ns", Prefix, Attack, "host.proc-pid1", "T001", Severity::High, "the init process's root or namespaces", kHostHint},
    {"/proc/sys", Prefix, Host, "kernel.proc-sys", "T001", Severity::High, "kernel tunables under /proc/sys", kHostHint},
    {"/sys/", Prefix, Host, "kernel.sysfs", "T001", Severity::High, "kernel objects under /sys", kHostHint},
    {"/lib/modules", Prefix, Host, "kernel.modules", "T001", Severity::High, "kernel modules directory", kHostHint},
    {"/dev/sd", Prefix, Host, "host.block-device", "T001", Severity::High, "raw block device", kHostHint},
    {"/dev/nvme", Prefix, Host, "host.block-device", "T001", Severity::High, "raw block device", kHostHint},
    {"/dev/vd", Prefix, Host, "host.block-device", "T001", Severity::High, "raw block device", kHostHint},
    {"/dev/xvd", Prefix, Host, "host.block-device", "T001", Severity::High, "raw block device", kHostHint},
    {"/etc/sudoers", Prefix, Attack, "priv.sudoers", "T004", Severity::High, "sudoers configuration", "Nothing in the sandbox runs as root; do not try to gain privileges."},
    {"/etc/shadow", Contains, Secret, "cred.shadow", "T005", Severity::High, "password hash file", kCredHint},
    {"/etc/gshadow", Contains, Secret, "cred.shadow", "T005", Severity::High, "password hash file", kCredHint},
    {"/.ssh", Contains, Secret, "cred.ssh", "T005", Severity::High, "SSH keys directory", kCredHint},
    {".ssh", Exact, Secret, "cred.ssh", "T005", Severity::High, "SSH keys directory", kCredHint},
    {"id_rsa", Contains, Secret, "cred.ssh", "T005", Severity::High, "SSH private key", kCredHint},
    {"id_ed25519", Contains, Secret, "cred.ssh", "T005", Severity::High, "SSH private key", kCredHint},
    {"id_ecdsa", Contains, Secret, "cred.ssh", "T005", Severity::High, "SSH private key", kCredHint},
    {"/.aws", Contains, Secret, "cred.cloud", "T005", Severity::High, "cloud credentials", kCredHint},
    {".aws", Exact, Secret, "cred.cloud", "T005", Severity::High, "cloud credentials", kCredHint},
    {"/.config/gcloud", Contains, Secret, "cred.cloud", "T005", Severity::High, "cloud credentials", kCredHint},
    {"/.kube/config", Contains, Secret, "cred.cloud", "T005", Severity::High, "Kubernetes credentials", kCredHint},
    {"/.docker/config.json", Contains, Secret, "cred.cloud", "T005", Severity::High, "registry credentials", kCredHint},
    {".netrc", Contains, Secret, "cred.file", "T005", Severity::High, "stored login credentials", kCredHint},
    {".git-credentials", Contains, Secret, "cred.file", "T005", Severity::High, "stored login credentials", kCredHint},
    {".env", Exact, Secret, "cred.dotenv", "T005", Severity::High, ".env secrets file", kCredHint},
    {"/.env", Suffix, Secret, "cred.dotenv", "T005", Severity::High, ".env secrets file", kCredHint},
    {"/environ", Suffix, Secret, "cred.proc-environ", "T005", Severity::High, "another process's environment", kCredHint},
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
        case Contains: return v.find(r.pattern) != std::string_view::npos;
        case Prefix: return v.substr(0, r.pattern.size()) == r.pattern;
        case Exact: return v == r.pattern;
        case Suffix:
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
        const bool attack = r.kind == Attack || r.kind == Socket;
        out.add(r.rule, r.threat, r.severity, tok, std::string(r.message) + ": " + std::string(value.substr(0, 120)),
                r.hint, attack ? Intent::Attack : Intent::Risky);
        if (r.kind == Secret) out.note_secret_read(tok, r.message);
        if (r.kind == Socket) out.note_network_use(tok);
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
                   std::string hint, Intent intent) {
    if (!accepts(at.line, at.column, rule)) return;
    std::vector<std::string> controls;
    if (const auto* t = threat_model::catalogue().find_threat(threat)) controls = t->controls;
    list_.push_back(Finding{std::move(rule), std::move(threat), std::move(controls), severity, at.line, at.column,
                            printable(std::move(message)), std::move(hint), intent == Intent::Attack});
}

void Findings::add_at(std::string rule, std::string threat, Severity severity, int line, int column,
                      std::string message, std::string hint, std::vector<std::string> controls) {
    if (!accepts(line, column, rule)) return;
    if (controls.empty()) {
        if (const auto* t = threat_model::catalogue().find_threat(threat)) controls = t->controls;
    }
    list_.push_back(Finding{std::move(rule), std::move(threat), std::move(controls), severity, line, column,
                            printable(std::move(message)), std::move(hint)});
}

bool Findings::accepts(int line, int column, std::string_view rule) const {
    // A pathological input could produce a finding per token; past this
    // many, more findings add nothing to the decision and cost memory.
    // (Checked first: a full list is the case where the scan below is longest.)
    if (list_.size() >= 200) return false;
    for (const auto& f : list_)
        if (f.line == line && f.column == column && f.rule == rule) return false;
    return true;
}

void Findings::note_secret_read(const Token& at, std::string_view what) {
    if (!secret_) secret_ = Noted{at.line, at.column, std::string(what)};
}

void Findings::note_network_use(const Token& at) {
    if (!network_) network_ = Noted{at.line, at.column, {}};
}

void Findings::add_combined() {
    // Either alone is a finding of its own (cred.*, *.env-dump, *.network)
    // and ordinary code does each: it reads its configuration, it downloads
    // data. Code that does both can send the credentials out, the step an
    // operator must see whatever the jail's network isolation would hold.
    if (!secret_ || !network_) return;
    std::vector<std::string> controls;
    if (const auto* t = threat_model::catalogue().find_threat("T005")) controls = t->controls;
    if (!accepts(secret_->line, secret_->column, "exfil.credentials")) return;
    list_.push_back(Finding{"exfil.credentials", "T005", std::move(controls), Severity::High, secret_->line,
                            secret_->column,
                            "reads credentials (" + secret_->what + ") and uses the network at line " +
                                std::to_string(network_->line) + " (credential exfiltration)",
                            "Do not read credentials or send data out; the sandbox has neither.", true});
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
        if (!accepts(at.line, at.column, f.rule)) continue;
        f.line = at.line;
        f.column = at.column;
        f.message += " (in embedded " + std::string(to_string(language)) + " code)";
        list_.push_back(std::move(f));
    }
    // Facts noted inside count for the whole input, placed at the call.
    if (inner.secret_) note_secret_read(at, inner.secret_->what);
    if (inner.network_) note_network_use(at);
}

}  // namespace kiln::security::detail
