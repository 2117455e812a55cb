// JavaScript (Node) rules. Module bindings are tracked through require()
// and import, so const cp = require('child_' + 'process'); cp.exec(...) is
// seen for what it is.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <unordered_set>

#include "common/text.hpp"
#include "security/rules.hpp"
#include "security/token_walk.hpp"

namespace kiln::security::detail {

namespace {

constexpr const char* kShellHint =
    "Do the work in JavaScript (fs, path) instead of starting processes; if a program is really needed, use the "
    "run_command tool so the command is validated on its own.";
constexpr const char* kDynamicHint =
    "Pass the program and a literal argument array (execFileSync('git', ['log', '-n', '5'])) so the validator can "
    "read it and no shell parses the data; never build a command line for exec() from data.";
constexpr const char* kEvalHint = "Do not execute code built at run time; use JSON.parse for data.";
constexpr const char* kNetHint = "The sandbox has no network; read inputs from files in /workspace.";

std::string strip_node(std::string m) { return m.rfind("node:", 0) == 0 ? m.substr(5) : m; }

const NameSet& network_modules() {
    static const NameSet s = {"net", "dgram", "http", "https", "http2", "tls", "dns", "axios",
                                            "node-fetch", "ws", "request", "got", "undici", "socket.io-client"};
    return s;
}

// Names whose value comes from outside the program: what a command built
// from them is built from.
const NameMap<DataSource>& data_sources() {
    static const NameMap<DataSource> m = [] {
        NameMap<DataSource> t;
        for (std::string_view n : {"argv", "stdin", "prompt", "readline", "question"}) t.add(n, DataSource::Input);
        t.add("env", DataSource::Environment);
        for (std::string_view n : {"fetch", "axios", "got", "request", "http", "https", "net", "WebSocket"})
            t.add(n, DataSource::Network);
        for (std::string_view n : {"readFileSync", "readFile", "createReadStream"}) t.add(n, DataSource::File);
        return t;
    }();
    return m;
}

class JsRules {
public:
    JsRules(const std::vector<Token>& tokens, Findings& out) : t_(tokens), w_(tokens), out_(out) {}

    void run() {
        for (std::size_t i = 0; i < w_.size(); ++i) token(i);
        child_process_load();
        // Any child process beside a socket is held; one that starts a
        // shell is the reverse-shell signature itself.
        if (net_ && shell_)
            out_.add("js.reverse-shell", "T005", Severity::Critical, *shell_,
                     "network connection combined with a child process (reverse shell pattern)",
                     "Do not give remote parties a shell; the sandbox has no network.",
                     spawns_shell_ ? Intent::Attack : Intent::Risky);
    }

private:
    // Loading child_process is judged by the calls made through it, each
    // on its command. Loaded and never called where this pass can see it
    // (handed on, called through a computed name), it can run anything.
    void child_process_load() {
        if (!cp_load_) return;
        if (cp_read_ && !cp_unread_)
            return out_.add("js.child-process", "T002", Severity::Info, *cp_load_,
                            "loads child_process; each call through it is judged on its command", kShellHint);
        out_.add("js.child-process", "T002", Severity::High, *cp_load_,
                 "loads child_process (runs external programs) and uses it in a way the validator cannot read",
                 kShellHint);
    }

    // const x = require(...) / import x from '...' / import {exec as e} from '...'
    void bind(std::string_view local, std::string target) { alias_.set(local, std::move(target)); }

    static std::string member(std::string_view module, std::string_view name) {
        std::string s(module);
        s += '.';
        s += name;
        return s;
    }

    // The dotted name through the bindings: `dotted` itself when its head
    // is not bound, else the rewritten name, built in `buffer`.
    std::string_view resolve(std::string_view dotted, std::string& buffer) const {
        std::string_view head = dotted.substr(0, dotted.find('.'));
        const std::string* target = alias_.find(head);
        if (!target) return dotted;
        buffer = *target;
        buffer += dotted.substr(head.size());
        return buffer;
    }

    void module_used(const std::string& raw, const Token& at) {
        std::string m = strip_node(raw);
        if (m == "child_process") {
            shell_ = &at;
            if (!cp_load_) cp_load_ = &at;
        } else if (network_modules().count(m)) {
            uses_network(at);
            out_.add("js.network", "T005", Severity::Medium, at, "loads network module " + m, kNetHint);
        } else if (m == "vm" || m == "worker_threads" || m == "cluster") {
            if (m == "vm")
                out_.add("js.vm", "T002", Severity::High, at, "loads vm (runs code built at run time)", kEvalHint);
        }
    }

    // Binding to the left of `= require(...)` or `= await import(...)`.
    void bind_left(std::size_t call_start, const std::string& module) {
        std::size_t k = call_start;
        if (k >= 1 && w_.is(k - 1, "await")) --k;
        if (k < 2 || !w_.is(k - 1, "=")) return;
        if (w_.kind(k - 2, TokenKind::Identifier)) return bind(t_[k - 2].text, module);
        if (w_.is(k - 2, "}")) {  // const { exec, spawn: sp } = require('child_process')
            std::size_t j = k - 2;
            while (j > 0 && !w_.is(j, "{")) --j;
            for (std::size_t m = j + 1; m < k - 2; ++m) {
                if (!w_.kind(m, TokenKind::Identifier)) continue;
                if (w_.is(m + 1, ":") && w_.kind(m + 2, TokenKind::Identifier)) {
                    bind(t_[m + 2].text, member(module, t_[m].text));
                    m += 2;
                } else {
                    bind(t_[m].text, member(module, t_[m].text));
                }
            }
        }
    }

    // import x from 'm'; import * as x from 'm'; import { a as b } from 'm'; import 'm'
    void import_statement(std::size_t i) {
        std::size_t k = i + 1;
        std::size_t from = k;
        while (from < w_.size() && !w_.is(from, "from") && !w_.kind(from, TokenKind::String) && from < k + 64) ++from;
        std::size_t str = w_.is(from, "from") ? from + 1 : from;
        if (!w_.kind(str, TokenKind::String)) return;
        import_end_ = str + 1;
        std::string module = strip_node(std::string(t_[str].value));
        module_used(module, t_[i]);
        for (std::size_t m = k; m < from; ++m) {
            if (!w_.kind(m, TokenKind::Identifier) || w_.is(m, "as")) continue;
            if (w_.is(m + 1, "as") && w_.kind(m + 2, TokenKind::Identifier)) {
                bind(t_[m + 2].text, t_[m].text == "*" ? module : member(module, t_[m].text));
                m += 2;
            } else if (w_.is(m - 1, "{") || w_.is(m - 1, ",")) {
                bind(t_[m].text, member(module, t_[m].text));
            } else {
                bind(t_[m].text, module);
            }
        }
        for (std::size_t m = k; m < from; ++m)
            if (w_.is(m, "*") && w_.is(m + 1, "as") && w_.kind(m + 2, TokenKind::Identifier))
                bind(t_[m + 2].text, module);
    }

    void token(std::size_t i) {
        const Token& tk = t_[i];
        if (tk.kind == TokenKind::String) {
            // A shell-out's constant command was analysed as shell already.
            if (i >= skip_begin_ && i < skip_end_) return;
            bool directive = (i == 0 || w_.is(i - 1, ";") || w_.is(i - 1, "{") || w_.is(i - 1, "}")) &&
                             (w_.is(i + 1, ";") || i + 1 == w_.size());
            if (!directive) check_sensitive_string(tk, tk.value, out_);
            return;
        }
        if (tk.kind == TokenKind::Operator && tk.text == "[") subscript(i);
        if (tk.kind != TokenKind::Identifier) return;
        if (i > 0 && w_.is(i - 1, ".")) return;
        if (tk.text == "import" && !w_.is(i + 1, "(") && !w_.is(i + 1, ".")) return import_statement(i);
        if ((tk.text == "while" || tk.text == "for") && w_.is(i + 1, "(")) loop(i);
        std::size_t end = 0;
        std::string raw_buffer, buffer;
        std::string_view raw = w_.dotted(i, end, raw_buffer);
        std::string_view name = resolve(raw, buffer);
        if (w_.is(end, "(")) return call(raw, name, i, end);
        if (name.rfind("child_process", 0) == 0 && raw != name && i >= import_end_ && !w_.is(end, "="))
            cp_unread_ = true;  // a binding of child_process used other than by a call
        if (name == "process.env" && !w_.is(end, "[") && !w_.is(end, ".") && !w_.is(end, "?.")) env_dump(i);
    }

    void env_dump(std::size_t i) {
        out_.add("js.env-dump", "T005", Severity::High, t_[i], "uses the whole process.env, which may hold secrets",
                 "Read only the variables you need: process.env.NAME.");
        // {...process.env, X: 1} and env: process.env hand the environment
        // on to a child process, as build scripts do; they do not collect it.
        const bool handed_on = i > 0 && (w_.is(i - 1, "...") || (i > 1 && w_.is(i - 1, ":") && w_.is(i - 2, "env")));
        if (!handed_on) out_.note_secret_read(t_[i], "the whole environment");
    }

    // What a network call sends: its arguments past the address
    // (fetch(url, {body: ...}), axios.post(url, data)).
    void sent_payload(std::string_view name, const Token& at, std::size_t open) {
        const std::size_t close = w_.close_of(open);
        out_.sends_data(name, data_source(t_, after_first_argument(t_, open, close), close, data_sources()), at);
    }

    void uses_network(const Token& at) {
        if (!net_) net_ = &at;
        out_.note_network_use(at);
    }

    void call(std::string_view raw, std::string_view name, std::size_t i, std::size_t open) {
        const Token& at = t_[i];
        if (raw == "require" || raw == "import") {
            int pieces = 0;
            auto m = w_.fold(open + 1, nullptr, &pieces);
            if (!m)
                return out_.add("js.dynamic-require", "T002", Severity::High, at,
                                std::string(raw) + "() of a module name computed at run time",
                                "Load modules by literal name.");
            module_used(*m, at);
            if (pieces > 1 && (strip_node(*m) == "child_process" || network_modules().count(strip_node(*m))))
                out_.add("js.obfuscated-require", "T002", Severity::Critical, at,
                         std::string(raw) + "() with an obfuscated module name: " + *m,
                         "Load modules by literal name.");
            bind_left(i, strip_node(*m));
            // require('m').f(...) calls m.f.
            const std::size_t close = w_.close_of(open);
            if (w_.is(close + 1, ".") && w_.kind(close + 2, TokenKind::Identifier) && w_.is(close + 3, "("))
                call(t_[close + 2].text, member(strip_node(*m), t_[close + 2].text), close + 2, close + 3);
            return;
        }
        if (name == "eval" || name == "Function" || name == "globalThis.eval" || name == "window.eval" ||
            (raw == "Function" && i > 0 && w_.is(i - 1, "new")))
            return dynamic_code(name, at, open, w_.close_of(open));
        if (name == "setTimeout" || name == "setInterval" || name == "setImmediate") {
            if (w_.kind(open + 1, TokenKind::String))
                out_.add("js.dynamic-code", "T002", Severity::High, at, std::string(name) + "() with a code string",
                         kEvalHint);
            return;
        }
        if (name.rfind("vm.", 0) == 0 && name.find("run") != std::string_view::npos)
            return out_.add("js.dynamic-code", "T002", Severity::High, at,
                            std::string(name) + "() runs code built at run time", kEvalHint);
        if (name.rfind("child_process", 0) == 0) return child_process(name, at, open);
        if (name == "process.binding" || name == "process.dlopen" || name == "process._linkedBinding")
            return out_.add("js.native-binding", "T001", Severity::High, at,
                            std::string(name) + "() reaches native internals", "Use Node's public modules.");
        if (name == "process.setuid" || name == "process.setgid" || name == "process.seteuid" ||
            name == "process.setegid" || name == "process.setgroups") {
            // Asking for id 0 is an escalation attempt; other ids drop privileges.
            const bool to_root = w_.kind(open + 1, TokenKind::Number) && t_[open + 1].text == "0";
            return out_.add("js.setuid", "T004", Severity::High, at,
                            std::string(name) + "() changes the process's ids" + (to_root ? " to root" : ""),
                            "Code runs as an unprivileged user; do not change ids.",
                            to_root ? Intent::Attack : Intent::Risky);
        }
        if (name == "fs.chmod" || name == "fs.chmodSync" || name == "fs.lchmod" || name == "fs.lchmodSync" ||
            name == "fs.fchmod" || name == "fs.fchmodSync" || name == "fs.promises.chmod" || name == "fs/promises.chmod")
            return chmod(at, open);
        if (deserializer(name)) return deserialize(name, at, open);
        if (name == "fetch" || name == "XMLHttpRequest" || name == "WebSocket" || name == "EventSource") {
            uses_network(at);
            sent_payload(name, at, open);
            return out_.add("js.network", "T005", Severity::Medium, at, std::string(name) + "() opens a network connection",
                            kNetHint);
        }
        // axios.post(url, data), got.post(url, {body}), http.request(url, ...)
        const auto dot = name.find('.');
        if (dot != std::string_view::npos && network_modules().count(name.substr(0, dot))) sent_payload(name, at, open);
        if (name == "JSON.stringify" && w_.is(open + 1, "process") && w_.is(open + 2, ".") && w_.is(open + 3, "env") &&
            w_.is(open + 4, ")"))
            return;  // reported by the process.env rule itself
    }

    // exec(cmd) runs a command line through /bin/sh; execFile and spawn run
    // a program with an argument array, through a shell only with
    // { shell: true } (Node then joins them with spaces); fork runs a
    // module in a new node.
    ShellCommand command_of(std::string_view fn, std::size_t open) const {
        const auto args = w_.items(open);
        if (args.empty()) return ShellCommand{.dynamic = {Walk::Item{open + 1, open + 1, {}}}};
        const bool argv_form = fn == "execFile" || fn == "execFileSync" || fn == "spawn" || fn == "spawnSync" || fn == "fork";
        if (!argv_form) return command_text(w_, args[0]);
        std::vector<Walk::Item> words{args[0]};
        std::size_t options = 1;
        if (args.size() > 1 && w_.is(args[1].begin, "[")) {
            auto given = list_elements(w_, args[1]);
            words.insert(words.end(), given.begin(), given.end());
            options = 2;
        }
        if (fn == "fork") {
            ShellCommand c = command_argv(w_, words);
            if (c.text) *c.text = "node " + *c.text;
            return c;
        }
        if (options < args.size() && shell_option(args[options])) {
            if (words.size() == 1) return command_text(w_, args[0]);
            ShellCommand c = command_argv(w_, words);
            c.part = DynamicPart::ShellText;  // the shell reads the arguments too
            return c;
        }
        if (words.size() == 1) return command_text(w_, args[0]);  // spawn('ls -la'): judged as a line
        return command_argv(w_, words);
    }

    // { shell: true } or { shell: '/bin/bash' } in an options object.
    bool shell_option(const Walk::Item& item) const {
        for (std::size_t k = item.begin; k + 2 < item.end; ++k)
            if (w_.is(k, "shell") && w_.is(k + 1, ":") && !w_.is(k + 2, "false")) return true;
        return false;
    }

    void child_process(std::string_view name, const Token& at, std::size_t open) {
        shell_ = &at;
        cp_read_ = true;
        const std::string_view fn = name.substr(name.rfind('.') + 1);
        const std::string wrapping = "child_process." + std::string(fn) + "()";
        ShellCommand cmd = command_of(fn, open);
        if (cmd.text) {
            skip_begin_ = cmd.first;
            skip_end_ = cmd.last;
            if (starts_shell(*cmd.text)) spawns_shell_ = true;
            const std::string_view text = cmd.view.empty() ? std::string_view(*cmd.text) : cmd.view;
            const Token& origin = cmd.first < w_.size() ? t_[cmd.first] : at;
            if (cmd.dynamic.empty()) out_.literal_command("js.shell-out", wrapping, text, at, origin);
            else out_.analyze_nested(Language::Shell, text, origin, wrapping);
        } else if (cmd.first < w_.size() && w_.kind(cmd.first, TokenKind::String) &&
                   starts_shell(t_[cmd.first].value)) {
            spawns_shell_ = true;
        }
        if (cmd.dynamic.empty()) return;
        DataSource source = DataSource::Computed;
        for (const auto& d : cmd.dynamic) source = std::max(source, data_source(t_, d.begin, d.end, data_sources()));
        out_.dynamic_command("js.dynamic-command", wrapping, source, cmd.part, at, kDynamicHint);
    }

    // "/bin/sh", "bash -i", "sh -c ...": the child is a shell.
    static bool starts_shell(std::string_view cmd) {
        std::string_view program = cmd.substr(0, cmd.find(' '));
        program = program.substr(program.rfind('/') + 1);
        return program == "sh" || program == "bash" || program == "dash" || program == "zsh" || program == "ash" ||
               program == "ksh";
    }

    // fs.chmod(path, 0o4755): a setuid or setgid bit.
    void chmod(const Token& at, std::size_t open) {
        const std::size_t mode = w_.second_argument(open);
        if (!w_.kind(mode, TokenKind::Number) || (mode_of(t_[mode].text) & 06000) == 0) return;
        out_.add("js.setuid-bit", "T004", Severity::High, at, "sets a setuid/setgid bit (" + std::string(t_[mode].text) + ")",
                 "Use ordinary permissions such as 0o644 or 0o755.", Intent::Attack);
    }

    // 0o4755, 04755 (legacy octal), 0x9ed, 2541.
    static unsigned long mode_of(std::string_view text) {
        std::string digits(text);
        digits.erase(std::remove(digits.begin(), digits.end(), '_'), digits.end());
        int base = 10;
        if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'o' || digits[1] == 'O')) {
            digits = digits.substr(2);
            base = 8;
        } else if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
            digits = digits.substr(2);
            base = 16;
        } else if (digits.size() > 1 && digits[0] == '0') {
            base = 8;
        }
        return std::strtoul(digits.c_str(), nullptr, base);
    }

    // Libraries whose loaders revive functions: node-serialize runs an
    // `_$$ND_FUNC$$_` value as code; js-yaml 3's full schema builds
    // !!js/function. (js-yaml 4's load and JSON.parse build data only.)
    static bool deserializer(std::string_view name) {
        return name == "node-serialize.unserialize" || name == "serialize-to-js.deserialize" ||
               name == "js-yaml.load" || name == "js-yaml.loadAll";
    }

    void deserialize(std::string_view name, const Token& at, std::size_t open) {
        const std::size_t close = w_.close_of(open);
        if (name.rfind("js-yaml.", 0) == 0) {
            bool full_schema = false;
            for (std::size_t k = open + 1; k < close; ++k) full_schema |= w_.is(k, "DEFAULT_FULL_SCHEMA");
            if (!full_schema) return;
        }
        std::size_t end = 0;
        const bool payload = w_.fold(open + 1, &end) && (w_.is(end, ")") || w_.is(end, ","));
        out_.add("js.unsafe-deserialization", "T002", payload ? Severity::Critical : Severity::High, at,
                 std::string(name) + "() of " + (payload ? "an embedded payload" : "data") +
                     " (the loader runs functions found in the data)",
                 kEvalHint);
    }

    void dynamic_code(std::string_view name, const Token& at, std::size_t open, std::size_t close) {
        for (std::size_t k = open + 1; k < close; ++k) {
            std::string_view s = t_[k].text;
            bool base64_arg = w_.kind(k, TokenKind::String) && t_[k].value == "base64";
            if (s == "atob" || base64_arg || s == "fromCharCode" || s == "unescape" || s == "decodeURIComponent") {
                for (std::size_t m = open + 1; m < close; ++m)
                    if (w_.kind(m, TokenKind::String))
                        if (auto raw = base64_decode(t_[m].value); raw && raw->size() > 3 && is_valid_utf8(*raw))
                            out_.analyze_nested(Language::JavaScript, *raw, t_[m]);
                return out_.add("js.decoded-exec", "T002", Severity::Critical, at,
                                std::string(name) + "() of a decoded payload (obfuscated code execution)",
                                kEvalHint);
            }
        }
        if (auto code = w_.fold(open + 1)) out_.analyze_nested(Language::JavaScript, *code, at);
        out_.add("js.dynamic-code", "T002", Severity::High, at, std::string(name) + "() executes code built at run time",
                 kEvalHint);
    }

    // globalThis['ev'+'al'], this['require'], process['binding'].
    void subscript(std::size_t i) {
        if (i == 0) return;
        std::string_view obj = t_[i - 1].text;
        if (obj != "globalThis" && obj != "global" && obj != "window" && obj != "this" && obj != "process" &&
            obj != "module" && obj != "self")
            return;
        int pieces = 0;
        auto key = w_.fold(i + 1, nullptr, &pieces);
        if (key && (is_dangerous_attribute(*key) || *key == "require" || *key == "mainModule" || *key == "env"))
            out_.add("js.namespace-obfuscation", "T002", pieces > 1 ? Severity::Critical : Severity::High, t_[i],
                     std::string(obj) + "['" + *key + "'] reaches a dangerous function indirectly",
                     "Call functions directly by name; indirect access hides what the code does.");
    }

    // while (true) { ... } / for (;;) { ... } with no exit, growing or spawning.
    void loop(std::size_t i) {
        std::size_t open = i + 1, close = w_.close_of(open);
        bool infinite = (t_[i].text == "while" && close == open + 2 &&
                         (w_.is(open + 1, "true") || (w_.kind(open + 1, TokenKind::Number) && t_[open + 1].text == "1"))) ||
                        (t_[i].text == "for" && close == open + 3 && w_.is(open + 1, ";") && w_.is(open + 2, ";"));
        if (!infinite || !w_.is(close + 1, "{")) return;
        std::size_t body_end = w_.close_of(close + 1);
        bool exits = false, spawns = false, grows = false;
        for (std::size_t b = close + 2; b < body_end; ++b) {
            std::string_view s = t_[b].text;
            if (s == "break" || s == "return" || s == "throw" || s == "exit") exits = true;
            if (s == "fork" || s == "spawn" || s == "exec" || s == "Worker" || s == "execSync") spawns = true;
            if (s == "push" || s == "concat" || s == "alloc" || s == "repeat" || s == "Array" || s == "set") grows = true;
        }
        if (exits) return;
        if (spawns)
            return out_.add("js.fork-bomb", "T003", Severity::Critical, t_[i],
                            "infinite loop that creates processes or workers", "Bound the loop and the workers.");
        if (grows)
            out_.add("js.unbounded-allocation", "T003", Severity::High, t_[i],
                     "infinite loop that keeps growing data in memory", "Bound the loop; stream data instead.");
    }

    std::span<const Token> t_;  // its size is stored, not computed from two pointers
    Walk w_;
    Findings& out_;
    AliasTable alias_;
    const Token* net_ = nullptr;
    const Token* shell_ = nullptr;
    bool spawns_shell_ = false;
    const Token* cp_load_ = nullptr;  // the first load of child_process
    bool cp_read_ = false;            // a call through it was judged
    bool cp_unread_ = false;          // a binding of it was used otherwise
    std::size_t import_end_ = 0;      // past the last import statement's names
    std::size_t skip_begin_ = 0, skip_end_ = 0;  // tokens of the last constant command
};

}  // namespace

void rules_javascript(const std::vector<Token>& tokens, Findings& out) { JsRules(tokens, out).run(); }

}  // namespace kiln::security::detail
