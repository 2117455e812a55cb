// Rules shared by every language: sensitive paths in string constants, and
// the plumbing that turns a rule hit into a Finding.
#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
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

namespace {

// Where a finding at `line`:`column` of `code` is in the outer input, when
// `code` is a view into the text of the token `at` (nothing decoded, so its
// bytes and line breaks are the source's own). Nothing otherwise.
std::optional<std::pair<int, int>> outer_position(std::string_view code, const Token& at, int line, int column) {
    const char* text = at.text.data();
    if (code.data() < text || code.data() + code.size() > text + at.text.size() || line < 1 || column < 1)
        return std::nullopt;
    if (line > 1) return std::pair{at.line + line - 1, column};
    return std::pair{at.line, at.column + static_cast<int>(code.data() - text) + column - 1};
}

}  // namespace

void Findings::merge(Finding f) {
    for (auto& g : list_) {
        if (g.line != f.line || g.column != f.column || g.rule != f.rule) continue;
        // The same rule at the same place, e.g. two inner findings both
        // placed at a folded command: keep the graver one's weight.
        if (f.severity > g.severity) g.severity = f.severity;
        g.attack_signature = g.attack_signature || f.attack_signature;
        return;
    }
    if (list_.size() < 200) list_.push_back(std::move(f));
}

void Findings::analyze_nested(Language language, std::string_view code, const Token& at, std::string_view via) {
    if (!can_nest()) return;
    Findings inner(policy_, depth_ + 1);
    switch (language) {
        case Language::Python: rules_python(tokenize_python(code).tokens, inner); break;
        case Language::Shell: rules_shell(tokenize_shell(code).tokens, inner); break;
        case Language::JavaScript: rules_javascript(tokenize_javascript(code).tokens, inner); break;
    }
    for (auto& f : inner.list()) {
        const auto place = outer_position(code, at, f.line, f.column);
        f.line = place ? place->first : at.line;
        f.column = place ? place->second : at.column;
        // `via` quotes the outer code, which may not be valid UTF-8.
        f.message = printable(f.message + (via.empty() ? " (in embedded " + std::string(to_string(language)) + " code)"
                                                       : " (in the " + std::string(to_string(language)) +
                                                             " command run by " + std::string(via) + ")"));
        merge(std::move(f));
    }
    // Facts noted inside count for the whole input, placed at the call.
    if (inner.secret_) note_secret_read(at, inner.secret_->what);
    if (inner.network_) note_network_use(at);
}

void Findings::literal_command(const char* rule, std::string_view wrapping, std::string_view command,
                               const Token& call, const Token& origin) {
    analyze_nested(Language::Shell, command, origin, wrapping);
    std::string shown(command.substr(0, 80));
    for (char& c : shown)
        if (c == '\n') c = ' ';
    add(rule, "T002", Severity::Info, call,
        std::string(wrapping) + " runs the constant command '" + shown + (command.size() > 80 ? "...'" : "'") +
            ", judged as that shell command",
        "Nothing to change: a constant command gets the verdict the same command gets in run_command.");
}

void Findings::dynamic_command(const char* rule, std::string_view wrapping, DataSource source, DynamicPart part,
                               const Token& call, const char* safer) {
    const bool shell = part == DynamicPart::ShellText;
    add(rule, "T002", dynamic_command_severity(source, part), call,
        std::string(wrapping) + (shell ? " runs a command built at run time" : " runs a program with arguments built at run time") +
            " from " + describe(source) + (shell ? "; the data can change what the command does" : ""),
        safer);
}

void Findings::sends_data(std::string_view call_name, DataSource source, const Token& call) {
    // Code that reads a file and posts it is how a workspace's data leaves;
    // the network use alone is a medium finding of its own. Risky, not an
    // attack: uploading results is ordinary where the network is allowed,
    // so a jail without network lowers it.
    if (source != DataSource::File && source != DataSource::Environment) return;
    add("exfil.data", "T005", Severity::High, call,
        std::string(call_name) + "() sends " + describe(source) + " over the network (data exfiltration)",
        "Write results to /workspace and let the caller fetch them; the sandbox has no network.");
}

const char* describe(DataSource s) {
    switch (s) {
        case DataSource::Computed: return "values computed by the program";
        case DataSource::File: return "file contents";
        case DataSource::Environment: return "the environment";
        case DataSource::Unbound: return "a name the code never defines (its value comes from outside the code shown)";
        case DataSource::Input: return "untrusted input (stdin or the command line)";
        case DataSource::Network: return "data received from the network";
    }
    return "the network";
}

Severity dynamic_command_severity(DataSource source, DynamicPart part) {
    // As shell text, data chooses the whole command; data from outside the
    // program (the caller, the environment, the network) is the injection
    // the threat names, and network data run as shell is curl | sh.
    // As arguments, the data cannot start another command: one step less.
    Severity shell = Severity::Medium;
    switch (source) {
        case DataSource::Computed:
        case DataSource::File: shell = Severity::Medium; break;
        case DataSource::Environment:
        case DataSource::Unbound:
        case DataSource::Input: shell = Severity::High; break;
        case DataSource::Network: shell = Severity::Critical; break;
    }
    if (part == DynamicPart::ShellText) return shell;
    return shell == Severity::Medium ? Severity::Low : static_cast<Severity>(static_cast<int>(shell) - 1);
}

namespace {

bool is_op(const Token& t, std::string_view s) { return t.kind == TokenKind::Operator && t.text == s; }
bool is_name(const Token& t, std::string_view s) { return t.kind == TokenKind::Identifier && t.text == s; }

// The end of the expression starting at `k`: a line end, or ';' ',' ':'
// or a closing bracket outside brackets opened in it, or (JavaScript, which
// has no line-end tokens) a token on a later line outside brackets.
std::size_t expression_end(std::span<const Token> t, std::size_t k) {
    int depth = 0;
    const int line = k < t.size() ? t[k].line : 0;
    std::size_t j = k;
    for (; j < t.size() && j < k + 256; ++j) {
        const Token& x = t[j];
        if (x.kind == TokenKind::Newline) break;
        if (depth == 0 && x.line != line) break;
        if (x.kind != TokenKind::Operator) continue;
        if (x.text == "(" || x.text == "[" || x.text == "{") ++depth;
        else if (x.text == ")" || x.text == "]" || x.text == "}") {
            if (--depth < 0) break;
        } else if (depth == 0 && (x.text == ";" || x.text == "," || x.text == ":")) {
            break;
        }
    }
    return j;
}

// The value last given to variable `name` before token `before`:
// name = ..., name += ..., for name in/of ..., with ... as name.
std::optional<std::pair<std::size_t, std::size_t>> last_assignment(std::span<const Token> t, std::string_view name,
                                                                   std::size_t before) {
    for (std::size_t j = std::min(before, t.size()); j-- > 0;) {
        if (!is_name(t[j], name) || (j > 0 && is_op(t[j - 1], "."))) continue;
        const bool next = j + 1 < t.size();
        if (next && (is_op(t[j + 1], "=") || is_op(t[j + 1], "+=") || is_op(t[j + 1], ":=")))
            return std::pair{j + 2, expression_end(t, j + 2)};
        if (next && (is_name(t[j + 1], "in") || is_name(t[j + 1], "of")))
            return std::pair{j + 2, expression_end(t, j + 2)};
        if (j > 0 && is_name(t[j - 1], "as")) {
            std::size_t w = j - 1;
            while (w > 0 && t[w].kind != TokenKind::Newline && !is_name(t[w], "with")) --w;
            if (is_name(t[w], "with")) return std::pair{w + 1, j - 1};
        }
    }
    return std::nullopt;
}

struct SourceSearch {
    std::span<const Token> t;
    const NameMap<DataSource>& markers;

    // `uses` is how many identifier tokens the use itself is (1 for a name
    // in code, 0 for one inside an f-string or template literal).
    DataSource of_name(std::string_view name, std::size_t at, int depth, int uses) const {
        if (const DataSource* s = markers.find(name)) return *s;
        if (depth >= 3) return DataSource::Computed;
        auto assigned = last_assignment(t, name, at);
        if (assigned) return of_range(assigned->first, assigned->second, depth + 1);
        // Not assigned before the use: a parameter, an import, a loop
        // variable... are all written somewhere else in the code. A name
        // written nowhere else is not the code's own value.
        return named_elsewhere(name, uses) ? DataSource::Computed : DataSource::Unbound;
    }

    bool named_elsewhere(std::string_view name, int uses) const {
        int seen = 0;
        for (const Token& x : t)
            if (x.kind == TokenKind::Identifier && x.text == name && ++seen > uses) return true;
        return false;
    }

    // Names in the {...} / ${...} parts of an f-string or template literal.
    DataSource of_interpolation(std::string_view text, std::size_t at, int depth) const {
        DataSource worst = DataSource::Computed;
        int braces = 0;  // inside {...}: the literal text around it names nothing
        for (std::size_t i = 0; i < text.size();) {
            const auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
            if (text[i] == '{') ++braces;
            if (text[i] == '}' && braces > 0) --braces;
            if (braces == 0 || !word(text[i]) || std::isdigit(static_cast<unsigned char>(text[i]))) {
                ++i;
                continue;
            }
            std::size_t e = i;
            while (e < text.size() && word(text[e])) ++e;
            worst = std::max(worst, of_name(text.substr(i, e - i), at, depth, 0));
            i = e;
        }
        return worst;
    }

    DataSource of_range(std::size_t begin, std::size_t end, int depth) const {
        DataSource worst = DataSource::Computed;
        for (std::size_t k = begin; k < end && k < t.size() && worst != DataSource::Network; ++k) {
            const Token& x = t[k];
            if (x.kind == TokenKind::String && x.interpolated) worst = std::max(worst, of_interpolation(x.text, begin, depth));
            if (x.kind != TokenKind::Identifier) continue;
            if (const DataSource* s = markers.find(x.text)) {
                worst = std::max(worst, *s);
                continue;
            }
            // A variable: not an attribute, not a call, not a keyword argument,
            // not a key in an object literal ({body: data}).
            const bool attribute = k > 0 && is_op(t[k - 1], ".");
            const bool called_or_named = k + 1 < t.size() && (is_op(t[k + 1], "(") || is_op(t[k + 1], "="));
            const bool key = k > 0 && (is_op(t[k - 1], "{") || is_op(t[k - 1], ",")) && k + 1 < t.size() &&
                             is_op(t[k + 1], ":");
            if (!attribute && !called_or_named && !key) worst = std::max(worst, of_name(x.text, begin, depth, 1));
        }
        return worst;
    }
};

}  // namespace

DataSource data_source(std::span<const Token> tokens, std::size_t begin, std::size_t end,
                       const NameMap<DataSource>& markers) {
    return SourceSearch{tokens, markers}.of_range(begin, end, 0);
}

std::size_t after_first_argument(std::span<const Token> t, std::size_t open, std::size_t close) {
    int depth = 0;
    for (std::size_t k = open + 1; k < close && k < t.size(); ++k) {
        if (t[k].kind != TokenKind::Operator) continue;
        if (t[k].text == "(" || t[k].text == "[" || t[k].text == "{") ++depth;
        else if (t[k].text == ")" || t[k].text == "]" || t[k].text == "}") --depth;
        else if (depth == 0 && t[k].text == ",") return k + 1;
    }
    return close;
}

ShellCommand command_text(const Walk& w, const Walk::Item& item) {
    ShellCommand c{.first = item.begin, .last = item.end};
    c.text = w.fold_item(item);
    if (c.text && item.end == item.begin + 1 && w[item.begin].value == *c.text) c.view = w[item.begin].value;
    if (!c.text) c.dynamic.push_back(item);
    return c;
}

namespace {

std::string_view program_name(std::string_view path) {
    auto slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// Index of the script in sh -c SCRIPT, or words.size().
std::size_t shell_script_index(const std::vector<std::string>& words) {
    if (words.empty()) return 0;
    const std::string_view program = program_name(words[0]);
    if (program != "sh" && program != "bash" && program != "dash" && program != "zsh" && program != "ksh" &&
        program != "ash")
        return words.size();
    for (std::size_t k = 1; k + 1 < words.size(); ++k)
        if (words[k].size() > 1 && words[k][0] == '-' && words[k].back() == 'c') return k + 1;
    return words.size();
}

}  // namespace

ShellCommand command_argv(const Walk& w, const std::vector<Walk::Item>& words) {
    ShellCommand c{.part = DynamicPart::Arguments};
    if (words.empty()) return c;
    c.first = words.front().begin;
    c.last = words.back().end;
    // A byte no constant argument holds marks the ones built at run time.
    constexpr std::string_view kUnknown = "\x01";
    std::vector<std::string> literal;
    for (const auto& word : words) {
        auto v = w.is(word.begin, "*") || w.is(word.begin, "**") || w.is(word.begin, "...") ? std::nullopt
                                                                                               : w.fold_item(word);
        if (!v) c.dynamic.push_back(word);
        literal.push_back(v ? *v : std::string(kUnknown));
    }
    const std::size_t script = shell_script_index(literal);
    for (const auto& d : c.dynamic)
        if (d.begin == words.front().begin || (script < words.size() && d.begin == words[script].begin)) {
            c.part = DynamicPart::ShellText;
            return c;
        }
    std::string joined = shell_join(literal);
    const std::string quoted = "'" + std::string(kUnknown) + "'";
    for (std::size_t at = joined.find(quoted); at != std::string::npos; at = joined.find(quoted, at))
        joined.replace(at, quoted.size(), "\"$ARG\"");
    c.text = std::move(joined);
    return c;
}

std::vector<Walk::Item> list_elements(const Walk& w, const Walk::Item& item) {
    if ((w.is(item.begin, "[") || w.is(item.begin, "(")) && w.close_of(item.begin) + 1 == item.end)
        return w.items(item.begin);
    return {item};
}

std::string shell_join(const std::vector<std::string>& words) {
    std::string line;
    for (const auto& w : words) {
        if (!line.empty()) line += ' ';
        const bool plain = !w.empty() && w.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                             "0123456789_@%+=:,./-") == std::string::npos;
        if (plain) {
            line += w;
            continue;
        }
        line += '\'';
        for (char c : w) {
            if (c == '\'') line += "'\\''";
            else line += c;
        }
        line += '\'';
    }
    return line;
}

}  // namespace kiln::security::detail
