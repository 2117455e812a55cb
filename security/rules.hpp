// Internal to the validator: the rule passes per language and the helpers
// they share. Not part of the public interface (security/validator.hpp).
#pragma once

#include <bitset>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "security/policy.hpp"
#include "security/token.hpp"
#include "security/token_walk.hpp"
#include "security/validator.hpp"

namespace kiln::security::detail {

// Where the data of a command built at run time comes from, in order of
// concern: code the program computed, a file, the environment, a name the
// code never defines (its value comes from outside the code shown, e.g. an
// earlier call in the same interpreter), the user or caller (stdin, argv),
// the network.
enum class DataSource { Computed, File, Environment, Unbound, Input, Network };

const char* describe(DataSource s);

// How a command built at run time reaches the program it starts: through a
// shell (a string: every byte of the data can become shell syntax), or as
// one argument among literal ones (the data stays one word).
enum class DynamicPart { ShellText, Arguments };

// The severity of a command built from `source` data, handed over as `part`.
Severity dynamic_command_severity(DataSource source, DynamicPart part);

// What a finding says about the code's purpose. Risky code is what ordinary
// programs also write (a subprocess, a large allocation): controls in force
// lower its level. An attack signature is code with no ordinary use (loading
// a kernel module, a reverse shell, a setuid copy of a shell): its level is
// never lowered, because the attempt is what an operator must see, whatever
// the jail would hold. Attack signatures are high or critical.
enum class Intent { Risky, Attack };

// Collects findings; fills the threat's controls from the catalogue and
// offsets positions when analysing code embedded in another language
// (a constant string handed to os.system is analysed as shell, with the
// findings placed at the string's position).
//
// Rules also note two facts that only count together: the code reads
// credentials (a key file, the whole environment) and the code sends data
// over the network. add_combined() turns both into one finding.
class Findings {
public:
    Findings(const Policy& policy, int depth = 0) : policy_(policy), depth_(depth) {}

    void add(std::string rule, std::string threat, Severity severity, const Token& at,
             std::string message, std::string hint, Intent intent = Intent::Risky);
    void add_at(std::string rule, std::string threat, Severity severity, int line, int column,
                std::string message, std::string hint, std::vector<std::string> controls = {});

    // The first credential read and the first network use are kept.
    void note_secret_read(const Token& at, std::string_view what);
    void note_network_use(const Token& at);
    // After every rule pass over the whole input: findings that combine
    // facts noted anywhere in it, embedded code included.
    void add_combined();

    // Analysis of code found inside code, bounded so a crafted input cannot
    // recurse without end.
    bool can_nest() const { return depth_ < 4; }
    // Runs `language` rules over `code`; findings are placed at `at`, or
    // at their own place inside `at` when `code` is `at`'s value exactly as
    // written (no escapes decoded), so each keeps its position in the outer
    // code. `via` names the wrapping in the findings' messages.
    void analyze_nested(Language language, std::string_view code, const Token& at, std::string_view via = {});

    // A shell-out whose command is known (constant): the command is judged
    // as shell, its findings reported through `wrapping`, and the shell-out
    // itself adds only an informational finding.
    // `call` is where the shell-out is written, `origin` the command's first
    // token (its findings are placed inside it when it is one literal).
    void literal_command(const char* rule, std::string_view wrapping, std::string_view command, const Token& call,
                         const Token& origin);
    // A shell-out whose command (or some of its arguments) is built at run
    // time from `source` data: a T002 finding saying so, with `safer`, the
    // language's safer form, as the hint.
    void dynamic_command(const char* rule, std::string_view wrapping, DataSource source, DynamicPart part,
                         const Token& call, const char* safer);
    // A network call at `call` whose payload holds `source` data: file
    // contents or the environment sent out is an exfil.data finding.
    void sends_data(std::string_view call_name, DataSource source, const Token& call);

    const Policy& policy() const { return policy_; }
    std::vector<Finding>& list() { return list_; }

private:
    struct Noted {
        int line = 0, column = 0;
        std::string what;
    };
    // False when the list is full or holds this rule at this place already.
    bool accepts(int line, int column, std::string_view rule) const;
    // Adds `f`, or when the list holds its rule at its place already,
    // raises that one to `f`'s severity and attack signature.
    void merge(Finding f);

    const Policy& policy_;
    int depth_;
    std::vector<Finding> list_;
    std::optional<Noted> secret_, network_;
};

// A 256-bit filter on a name's first byte and length. Nearly every name the
// rules look up is in none of their tables; the filter answers most of those
// lookups without hashing or comparing.
class NameFilter {
public:
    void add(std::string_view name) { bits_.set(slot(name)); }
    bool might_hold(std::string_view name) const { return bits_.test(slot(name)); }

private:
    static std::size_t slot(std::string_view s) {
        unsigned first = s.empty() ? 0 : static_cast<unsigned char>(s[0]);
        return (first * 8 + s.size()) % 256;
    }
    std::bitset<256> bits_;
};

// A fixed set of names whose storage outlives it (string literals).
class NameSet {
public:
    NameSet(std::initializer_list<std::string_view> names) : set_(names) {
        for (std::string_view n : names) filter_.add(n);
    }
    bool contains(std::string_view name) const { return filter_.might_hold(name) && search(name); }
    std::size_t count(std::string_view name) const { return contains(name) ? 1 : 0; }
    auto begin() const { return set_.begin(); }
    auto end() const { return set_.end(); }

private:
    // Out of line: the filter above is the part worth inlining.
    [[gnu::noinline]] bool search(std::string_view name) const { return set_.count(name) > 0; }

    NameFilter filter_;
    std::unordered_set<std::string_view> set_;
};

// A fixed map from names (string literals) to values, filtered the same way.
template <class T>
class NameMap {
public:
    void add(std::string_view name, T value) {
        filter_.add(name);
        map_.emplace(name, std::move(value));
    }
    const T* find(std::string_view name) const { return filter_.might_hold(name) ? search(name) : nullptr; }

private:
    [[gnu::noinline]] const T* search(std::string_view name) const {
        auto it = map_.find(name);
        return it == map_.end() ? nullptr : &it->second;
    }

    NameFilter filter_;
    std::unordered_map<std::string_view, T> map_;
};

// Import bindings of one file: local name -> the module or member it stands
// for, filtered like NameSet.
class AliasTable {
public:
    // Binds `local`, replacing any earlier binding (a later import wins).
    void set(std::string_view local, std::string target) {
        filter_.add(local);
        auto it = map_.find(local);
        if (it == map_.end()) map_.emplace(std::string(local), std::move(target));
        else it->second = std::move(target);
    }
    // Binds `local` unless it is bound already.
    void add(std::string_view local, std::string target) {
        if (find(local)) return;
        set(local, std::move(target));
    }
    const std::string* find(std::string_view local) const {
        return filter_.might_hold(local) ? search(local) : nullptr;
    }

private:
    [[gnu::noinline]] const std::string* search(std::string_view local) const {
        auto it = map_.find(local);
        return it == map_.end() ? nullptr : &it->second;
    }

    NameFilter filter_;
    std::map<std::string, std::string, std::less<>> map_;
};

// Where the value of tokens [begin, end) comes from: names in `markers`
// (input, os.environ, recv ...) found there or in the assignments of the
// variables used there, followed back a few steps. Computed when nothing
// says otherwise.
DataSource data_source(std::span<const Token> tokens, std::size_t begin, std::size_t end,
                       const NameMap<DataSource>& markers);

// The first token after a call's first argument (the one after its first
// top-level comma), or `close` when it has one argument: what a network call
// sends, past the address it sends to.
std::size_t after_first_argument(std::span<const Token> tokens, std::size_t open, std::size_t close);

// Words joined into one shell command line, each quoted when the shell
// would otherwise split or expand it: ["sh", "-c", "a | b"] -> sh -c 'a | b'.
std::string shell_join(const std::vector<std::string>& words);

// The command of one shell-out as the validator can read it.
struct ShellCommand {
    std::optional<std::string> text;  // shell text, with "$ARG" for each argument built at run time
    std::string_view view;            // the text as written in one literal, when it is (for positions)
    std::vector<Walk::Item> dynamic;  // the parts built at run time
    DynamicPart part = DynamicPart::ShellText;
    std::size_t first = 0, last = 0;  // its tokens
};
// A command line in one item: constant, or built at run time.
ShellCommand command_text(const Walk& w, const Walk::Item& item);
// A program and its arguments, one item each: the constant ones joined as
// shell words, the others standing in as "$ARG". When the program itself,
// or the script of sh -c, is built at run time, the data is the command:
// no text, and the part is ShellText.
ShellCommand command_argv(const Walk& w, const std::vector<Walk::Item>& words);
// The elements of a list or tuple (array) item, or the item itself.
std::vector<Walk::Item> list_elements(const Walk& w, const Walk::Item& item);

void rules_python(const std::vector<Token>& tokens, Findings& out);
void rules_shell(const std::vector<Token>& tokens, Findings& out);
void rules_javascript(const std::vector<Token>& tokens, Findings& out);

// Paths and names in string constants that point at the host, the kernel or
// credentials (/etc/shadow, ~/.ssh, docker.sock, /proc/sys, /dev/tcp ...).
// Shared by all languages; applied to decoded string values only.
void check_sensitive_string(const Token& tok, std::string_view value, Findings& out);

// "system", "popen", "eval" ...: names that, reached through getattr or a
// subscript, are an attempt to hide a call.
bool is_dangerous_attribute(std::string_view name);

}  // namespace kiln::security::detail
