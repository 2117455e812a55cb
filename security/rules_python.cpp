// Python rules. Names are resolved through the file's imports
// (import subprocess as sp; from os import system as s) before they are
// matched, and constant string expressions are folded, so renaming and
// 'sys'+'tem' do not hide a call.
#include <map>
#include <unordered_map>
#include <set>
#include <unordered_set>

#include "common/text.hpp"
#include "security/rules.hpp"
#include "security/token_walk.hpp"

namespace kiln::security::detail {

namespace {

constexpr const char* kDynamicHint =
    "Pass the command as a list of literal strings (subprocess.run(['git', 'log', '-n', '5'])) so the validator can "
    "read it and no shell parses the data; if data must go into a shell string, quote it with shlex.quote().";
constexpr const char* kEvalHint =
    "Do not execute code built at run time; write the code directly (ast.literal_eval parses data safely).";
constexpr const char* kNetHint = "The sandbox has no network; read inputs from files in /workspace.";

const NameSet& shell_out_calls() {
    static const NameSet s = {
        "os.system", "os.popen", "os.popen2", "os.popen3", "os.popen4", "os.execv", "os.execve", "os.execvp",
        "os.execvpe", "os.execl", "os.execle", "os.execlp", "os.execlpe", "os.spawnv", "os.spawnve", "os.spawnvp",
        "os.spawnvpe", "os.spawnl", "os.spawnle", "os.spawnlp", "os.spawnlpe", "os.posix_spawn", "os.posix_spawnp",
        "subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output", "subprocess.Popen",
        "subprocess.getoutput", "subprocess.getstatusoutput", "pty.spawn", "commands.getoutput",
        "commands.getstatusoutput", "pexpect.spawn", "pexpect.run", "asyncio.create_subprocess_shell",
        "asyncio.create_subprocess_exec", "platform.popen"};
    return s;
}

const NameSet& dynamic_code_calls() {
    static const NameSet s = {"eval", "exec", "compile", "execfile", "builtins.eval", "builtins.exec",
                                            "builtins.compile", "code.interact", "runpy.run_path",
                                            "runpy.run_module"};
    return s;
}

const NameSet& network_modules() {
    static const NameSet s = {
        "socket", "requests", "urllib.request", "urllib3", "http.client", "http.server", "socketserver",
        "ftplib", "smtplib", "telnetlib", "paramiko", "httpx", "aiohttp", "websocket", "websockets",
        "xmlrpc.client", "xmlrpc.server", "poplib", "imaplib", "nntplib", "pycurl", "scapy", "asyncssh",
        "fabric", "dns.resolver", "twisted.internet", "zmq"};
    return s;
}

const NameSet& dangerous_modules() {
    static const NameSet s = {"os", "subprocess", "pty", "socket", "ctypes", "builtins", "importlib",
                                            "commands", "pexpect", "posix", "shutil", "sys", "code", "runpy"};
    return s;
}

const NameSet& decoders() {
    static const NameSet s = {"b64decode", "b32decode", "b16decode", "b85decode", "a85decode",
                                            "decodebytes", "decodestring", "unhexlify", "fromhex", "decompress",
                                            "loads", "rot13", "urlsafe_b64decode", "decode"};
    return s;
}

const NameSet& setuid_calls() {
    static const NameSet s = {"os.setuid", "os.setgid", "os.seteuid", "os.setegid", "os.setreuid",
                                            "os.setregid", "os.setresuid", "os.setresgid", "os.setgroups"};
    return s;
}

// Calls that leave the sandbox's root or namespaces (attack signatures),
// and os.mknod, which also makes ordinary FIFOs.
const NameSet& kernel_calls() {
    static const NameSet s = {"os.chroot", "os.unshare", "os.setns", "os.mknod", "os.pivot_root",
                                            "os.mount"};
    return s;
}

// Loaders that run code chosen by whoever wrote the data: pickle's
// REDUCE, marshal's code objects, PyYAML's python/object tags.
const NameSet& deserializer_calls() {
    static const NameSet s = {
        "pickle.loads", "pickle.load", "pickle.Unpickler", "cPickle.loads", "cPickle.load", "cPickle.Unpickler",
        "_pickle.loads", "_pickle.load", "_pickle.Unpickler", "dill.loads", "dill.load", "cloudpickle.loads",
        "cloudpickle.load", "marshal.loads", "marshal.load", "jsonpickle.decode", "pandas.read_pickle",
        "numpy.load", "yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load",
        "yaml.full_load_all"};
    return s;
}

// Decoders that turn text into bytes: the shape of a payload smuggled as text.
const NameSet& payload_decoders() {
    static const NameSet s = {"b64decode", "urlsafe_b64decode", "b32decode", "b16decode", "b85decode",
                              "a85decode", "decodebytes", "decodestring", "unhexlify", "fromhex"};
    return s;
}

// Names whose value comes from outside the program: what a command built
// from them is built from.
const NameMap<DataSource>& data_sources() {
    static const NameMap<DataSource> m = [] {
        NameMap<DataSource> t;
        for (std::string_view n : {"input", "raw_input", "argv", "stdin", "getpass", "fileinput"})
            t.add(n, DataSource::Input);
        for (std::string_view n : {"environ", "environb", "getenv"}) t.add(n, DataSource::Environment);
        for (std::string_view n : {"recv", "recvfrom", "recv_into", "recvmsg", "urlopen", "urlretrieve", "requests",
                                   "httpx", "urllib3", "aiohttp", "websocket", "websockets", "paramiko"})
            t.add(n, DataSource::Network);
        for (std::string_view n : {"open", "read", "read_text", "read_bytes", "readline", "readlines"})
            t.add(n, DataSource::File);
        return t;
    }();
    return m;
}

// "urllib.request.urlopen" is in module "urllib.request": check each dotted
// prefix against the set instead of each module against the name.
bool in_module(std::string_view qualified, const NameSet& modules) {
    for (std::size_t dot = qualified.find('.'); dot != std::string_view::npos; dot = qualified.find('.', dot + 1))
        if (modules.count(qualified.substr(0, dot))) return true;
    return modules.count(qualified) > 0;
}

std::string_view last_component(std::string_view dotted) {
    auto dot = dotted.rfind('.');
    return dot == std::string_view::npos ? dotted : dotted.substr(dot + 1);
}

class PythonRules {
public:
    PythonRules(const std::vector<Token>& tokens, Findings& out) : t_(tokens), w_(tokens), out_(out) {}

    void run() {
        for (std::size_t i = 0; i < w_.size(); ++i) {
            if (line_start(i) && (w_.is(i, "import") || w_.is(i, "from"))) imports(i);
        }
        for (std::size_t i = 0; i < w_.size(); ++i) token(i);
        reverse_shell();
    }

private:
    bool line_start(std::size_t i) const { return i == 0 || t_[i - 1].kind == TokenKind::Newline; }

    // A dotted name through the imports: sp.run with `import subprocess as
    // sp` is subprocess.run. Either `dotted` itself or the rewritten name,
    // kept in `buffer` (which `dotted` may view).
    std::string_view resolve(std::string_view dotted, std::string& buffer) const {
        std::string_view head = dotted.substr(0, dotted.find('.'));
        if (const std::string* target = alias_.find(head)) {
            buffer = *target + std::string(dotted.substr(head.size()));
            return buffer;
        }
        // from os import *  makes every os name a bare name.
        for (const auto& m : star_) {
            std::string qualified = m + "." + std::string(dotted);
            if (shell_out_calls().count(qualified) || setuid_calls().count(qualified)) {
                buffer = std::move(qualified);
                return buffer;
            }
        }
        return dotted;
    }

    void import_module(const std::string& module, const Token& at) {
        if (in_module(module, network_modules())) network(at, "imports network module " + module);
        if (module.rfind("ctypes", 0) == 0) ctypes_ = true;
        if (module == "ctypes" || module == "cffi")
            out_.add("py.ctypes", "T001", Severity::Medium, at,
                     "imports " + module + ", which can call any libc function or syscall",
                     "Use Python's standard library; raw syscalls are blocked by the sandbox anyway.");
    }

    // import a.b as c, d  |  from a import b as c, *
    void imports(std::size_t i) {
        std::size_t e = 0;
        std::string buffer;
        if (w_.is(i, "import")) {
            for (std::size_t k = i + 1; k < w_.size() && !w_.kind(k, TokenKind::Newline);) {
                if (!w_.kind(k, TokenKind::Identifier)) {
                    ++k;
                    continue;
                }
                std::string module(w_.dotted(k, e, buffer));
                std::string local = module.substr(0, module.find('.'));
                std::string target = local;
                if (w_.is(e, "as") && w_.kind(e + 1, TokenKind::Identifier)) {
                    local = t_[e + 1].text;
                    target = module;
                    e += 2;
                }
                alias_.set(local, target);
                import_module(module, t_[k]);
                k = e;
            }
            return;
        }
        if (!w_.kind(i + 1, TokenKind::Identifier) && !w_.is(i + 1, ".")) return;
        std::size_t k = i + 1;
        while (w_.is(k, ".")) ++k;  // relative import: local package, not a stdlib module
        if (!w_.kind(k, TokenKind::Identifier)) return;
        std::string module(w_.dotted(k, e, buffer));
        if (k != i + 1) module = "." + module;
        if (!w_.is(e, "import")) return;
        import_module(module, t_[k]);
        for (k = e + 1; k < w_.size() && !w_.kind(k, TokenKind::Newline); ++k) {
            if (w_.is(k, "*")) star_.insert(module);
            if (!w_.kind(k, TokenKind::Identifier)) continue;
            std::string name(t_[k].text), local = name;
            if (w_.is(k + 1, "as") && w_.kind(k + 2, TokenKind::Identifier)) {
                local = t_[k + 2].text;
                k += 2;
            }
            alias_.set(local, module + "." + name);
            import_module(module + "." + name, t_[k]);
        }
    }

    void network(const Token& at, const std::string& what) {
        if (!net_) net_ = &at;
        out_.note_network_use(at);
        out_.add("py.network", "T005", Severity::Medium, at, what, kNetHint);
    }

    void token(std::size_t i) {
        const Token& tk = t_[i];
        if (tk.kind == TokenKind::String) {
            // A shell-out's constant command was analysed as shell already.
            if (i >= skip_begin_ && i < skip_end_) return;
            // A string alone on its line is a docstring or a comment in disguise.
            bool alone = line_start(i) && (i + 1 >= w_.size() || w_.kind(i + 1, TokenKind::Newline));
            if (!alone) check_sensitive_string(tk, tk.value, out_);
            return;
        }
        if (tk.kind == TokenKind::Operator && tk.text == "[") subscript(i);
        if (tk.kind == TokenKind::Number) huge_number(i);
        if (tk.kind != TokenKind::Identifier) return;
        if (i > 0 && (w_.is(i - 1, ".") || w_.is(i - 1, "def") || w_.is(i - 1, "class") || w_.is(i - 1, "import")))
            return;
        if (line_start(i) && w_.is(i, "while")) loop(i);
        std::size_t end = 0;
        std::string buffer;
        std::string_view name = qualified_name(i, end, buffer);
        if (w_.is(end, "(")) call(name, i, end);
        else attribute(name, i, end);
    }

    // The dotted name starting at token i, resolved through the imports;
    // `end` is set past it. Most names are one identifier that is not an
    // alias: then the view is the token's text and no string is built.
    std::string_view qualified_name(std::size_t i, std::size_t& end, std::string& buffer) const {
        if (!w_.dot_follows(i) && star_.empty()) {
            end = i + 1;
            const std::string* target = alias_.find(t_[i].text);
            return target ? std::string_view(*target) : t_[i].text;
        }
        return resolve(w_.dotted(i, end, buffer), buffer);
    }

    void attribute(std::string_view name, std::size_t i, std::size_t end) {
        if (name.rfind("os.environ", 0) != 0) return;
        // os.environ as a whole (printed, copied, iterated) is an environment
        // dump; os.environ['X'] and os.environ.get('X') read one variable.
        bool whole = name == "os.environ" || name == "os.environb";
        bool iterated = (name == "os.environ.items" || name == "os.environ.keys" || name == "os.environ.values" ||
                         name == "os.environ.copy");
        if (!(whole && !w_.is(end, "[")) && !iterated) return;
        out_.add("py.env-dump", "T005", Severity::High, t_[i],
                 "reads the whole environment (" + std::string(name) + "), which may hold secrets",
                 "Read only the variables you need with os.environ.get('NAME').");
        if (!hands_env_on(name, i)) out_.note_secret_read(t_[i], "the whole environment");
    }

    // os.environ.copy(), env=os.environ, {**os.environ, ...}: the environment
    // passed on to a child process, as build scripts do, not collected.
    bool hands_env_on(std::string_view name, std::size_t i) const {
        if (name == "os.environ.copy" || (i > 0 && w_.is(i - 1, "**"))) return true;
        return i > 1 && w_.is(i - 1, "=") && w_.is(i - 2, "env");
    }

    // Does the argument list (open paren at `open`) contain a decoder call
    // such as base64.b64decode? Decodes constant base64 payloads and
    // analyses them as Python too.
    bool decodes_payload(std::size_t open, std::size_t close) {
        bool found = false;
        for (std::size_t k = open + 1; k < close; ++k) {
            if (!w_.kind(k, TokenKind::Identifier) || !decoders().count(t_[k].text)) continue;
            found = true;
            if (w_.is(k + 1, "(") && w_.kind(k + 2, TokenKind::String)) {
                if (auto raw = base64_decode(t_[k + 2].value); raw && is_valid_utf8(*raw))
                    out_.analyze_nested(Language::Python, *raw, t_[k + 2]);
            }
        }
        return found;
    }

    enum class CallKind {
        Other, EnvIter, ShellOut, DynamicCode, DynamicImport, Getattr, Setuid, Kernel, Fork, Dup2, Chmod, Deserialize
    };

    // One hash lookup classifies a call; most calls (print, len, df.groupby)
    // are Other and cost nothing more.
    static CallKind classify(std::string_view name) {
        static const std::unordered_map<std::string_view, CallKind> table = [] {
            std::unordered_map<std::string_view, CallKind> t;
            for (const auto& n : shell_out_calls()) t[n] = CallKind::ShellOut;
            for (const auto& n : dynamic_code_calls()) t[n] = CallKind::DynamicCode;
            for (const auto& n : setuid_calls()) t[n] = CallKind::Setuid;
            for (const auto& n : kernel_calls()) t[n] = CallKind::Kernel;
            for (const char* n : {"os.environ.items", "os.environ.keys", "os.environ.values", "os.environ.copy"})
                t[n] = CallKind::EnvIter;
            for (const char* n : {"__import__", "importlib.import_module", "importlib.__import__"})
                t[n] = CallKind::DynamicImport;
            for (const char* n : {"getattr", "builtins.getattr"}) t[n] = CallKind::Getattr;
            for (const char* n : {"os.fork", "os.forkpty", "pty.fork"}) t[n] = CallKind::Fork;
            t["os.dup2"] = CallKind::Dup2;
            for (const char* n : {"os.chmod", "os.fchmod", "os.lchmod"}) t[n] = CallKind::Chmod;
            for (const auto& n : deserializer_calls()) t[n] = CallKind::Deserialize;
            return t;
        }();
        static const NameFilter filter = [] {
            NameFilter f;
            for (const auto& [n, kind] : table) f.add(n);
            return f;
        }();
        if (!filter.might_hold(name)) return CallKind::Other;
        auto it = table.find(name);
        return it == table.end() ? CallKind::Other : it->second;
    }

    void call(std::string_view name, std::size_t i, std::size_t open) {
        const Token& at = t_[i];
        switch (classify(name)) {
            case CallKind::EnvIter: return attribute(name, i, open);
            case CallKind::ShellOut: return shell_out(std::string(name), at, open);
            case CallKind::DynamicCode: return dynamic_code(std::string(name), at, open, w_.close_of(open));
            case CallKind::DynamicImport: return dynamic_import(std::string(name), at, open);
            case CallKind::Getattr: return getattr_call(at, open);
            case CallKind::Setuid: return setuid_call(name, at, open);
            case CallKind::Kernel:
                return out_.add("py.kernel-call", "T001", Severity::High, at, std::string(name) + "() touches namespaces or devices",
                                "Do not manipulate namespaces, roots or device nodes; the sandbox denies it.",
                                name == "os.mknod" ? Intent::Risky : Intent::Attack);
            case CallKind::Fork:
                fork_ = &at;
                return out_.add("py.fork", "T003", Severity::Medium, at, std::string(name) + "() creates processes",
                                "Use a bounded multiprocessing.Pool, or no processes at all.");
            case CallKind::Dup2:
                dup2_ = &at;
                return out_.add("py.fd-redirect", "T005", Severity::Medium, at,
                                "os.dup2() redirects standard streams (reverse-shell building block)",
                                "Write output to files or stdout; do not rewire file descriptors.");
            case CallKind::Chmod: return chmod_call(at, open, w_.close_of(open));
            case CallKind::Deserialize: return deserialize(name, at, open, w_.close_of(open));
            case CallKind::Other: break;
        }
        if (ctypes_) ctypes_call(name, at);
        const bool network_call = name.find('.') != std::string_view::npos &&
                                  (in_module(name, network_modules()) || name == "urllib.urlopen" ||
                                   name == "urllib.urlretrieve");
        if (network_call && !net_) network(at, "calls " + std::string(name) + "()");
        if (network_call || (net_ && is_socket_send(name))) sent_payload(name, at, open, network_call);
    }

    // sock.send(data): a method of an object the validator cannot type; in
    // code that uses the network it is taken for a socket's.
    static bool is_socket_send(std::string_view name) {
        const std::string_view last = last_component(name);
        return last == "send" || last == "sendall" || last == "sendto";
    }

    // What a network call sends: past its first argument (the address) for
    // requests.post(url, data=...) and its kind, all of it for sock.send(data).
    void sent_payload(std::string_view name, const Token& at, std::size_t open, bool skip_address) {
        const std::size_t close = w_.close_of(open);
        const std::size_t from = skip_address ? after_first_argument(t_, open, close) : open + 1;
        out_.sends_data(name, data_source(t_, from, close, data_sources()), at);
    }

    void ctypes_call(std::string_view name, const Token& at) {
        if (name.rfind("ctypes.", 0) == 0 &&
            (name.find("CDLL") != std::string_view::npos || name.find("cdll") != std::string_view::npos))
            return out_.add("py.ctypes", "T001", Severity::High, at, std::string(name) + "() loads a native library",
                            "Use Python's standard library; native calls bypass the validator.");
        static const NameSet syscalls = {"mount", "umount", "umount2", "unshare",
                                                                 "setns", "ptrace", "pivot_root", "syscall",
                                                                 "init_module", "finit_module"};
        std::string_view last = last_component(name);
        // syscall(NR, ...) also serves gettid and the like; the named ones
        // load kernel modules or leave the sandbox's root and namespaces.
        if (syscalls.count(last))
            out_.add("py.raw-syscall", "T001", Severity::Critical, at,
                     "calls " + std::string(last) + "() through ctypes (kernel attack surface)",
                     "Do not call kernel interfaces directly; the sandbox denies them.",
                     last == "syscall" ? Intent::Risky : Intent::Attack);
    }

    // How each shell-out takes its command. Shell: one string the shell
    // reads (os.system). Subprocess: an argv list, or a string with
    // shell=True. ExecV / ExecL: a path then an argv list or argv values
    // (argv[0] is only the name the program sees). Spawn*: the same after a
    // mode. Program: a path then argument values (create_subprocess_exec).
    enum class Form { Shell, Subprocess, ExecV, ExecL, SpawnV, SpawnL, PtySpawn, Program };

    static Form form_of(std::string_view name) {
        if (name.rfind("subprocess.", 0) == 0 && name != "subprocess.getoutput" && name != "subprocess.getstatusoutput")
            return Form::Subprocess;
        if (name == "pty.spawn") return Form::PtySpawn;
        if (name == "asyncio.create_subprocess_exec") return Form::Program;
        if (name == "os.posix_spawn" || name == "os.posix_spawnp") return Form::ExecV;
        if (name.rfind("os.exec", 0) == 0) return name.find('v', 7) != std::string_view::npos ? Form::ExecV : Form::ExecL;
        if (name.rfind("os.spawn", 0) == 0) return name.find('v', 8) != std::string_view::npos ? Form::SpawnV : Form::SpawnL;
        return Form::Shell;
    }

    ShellCommand shell_text(const Walk::Item& item) const {
        // shlex.split('...'): the words of a constant command line.
        if (w_.is(item.begin, "shlex") && w_.is(item.begin + 2, "split") && w_.is(item.begin + 3, "(") &&
            w_.close_of(item.begin + 3) + 1 == item.end) {
            auto inner = w_.items(item.begin + 3);
            if (inner.size() == 1) {
                ShellCommand c = command_text(w_, inner[0]);
                c.first = item.begin;
                c.last = item.end;
                return c;
            }
        }
        return command_text(w_, item);
    }
    ShellCommand argv(const std::vector<Walk::Item>& words) const { return command_argv(w_, words); }
    std::vector<Walk::Item> elements(const Walk::Item& item) const { return list_elements(w_, item); }

    ShellCommand command_of(Form form, std::string_view name, std::size_t open) const {
        std::vector<Walk::Item> args, positional;
        args = w_.items(open);
        const Walk::Item* shell = nullptr;
        for (const auto& a : args) {
            if (a.keyword.empty()) positional.push_back(a);
            if (a.keyword == "args" || a.keyword == "cmd" || a.keyword == "command") positional.insert(positional.begin(), a);
            if (a.keyword == "shell") shell = &a;
        }
        if (positional.empty()) return ShellCommand{.dynamic = {Walk::Item{open + 1, open + 1, {}}}};
        const Walk::Item& first = positional.front();
        const bool list = w_.is(first.begin, "[") || w_.is(first.begin, "(");
        const bool shell_true = shell && !(shell->end == shell->begin + 1 && w_.is(shell->begin, "False"));
        auto after = [&](std::size_t skip) {
            return std::vector<Walk::Item>(positional.begin() + static_cast<long>(std::min(skip, positional.size())),
                                           positional.end());
        };
        switch (form) {
            case Form::Shell: return shell_text(first);
            case Form::Subprocess:
            case Form::PtySpawn:
                if (!list) return shell_text(first);
                // shell=True with a list: the first element is the command line.
                if (shell_true) {
                    auto e = elements(first);
                    return e.empty() ? ShellCommand{} : shell_text(e.front());
                }
                return argv(elements(first));
            case Form::Program: return argv(positional);
            case Form::ExecV:
            case Form::SpawnV: {
                auto rest = after(form == Form::SpawnV ? 1 : 0);
                if (rest.size() < 2) return argv(rest);
                std::vector<Walk::Item> words{rest[0]};
                auto given = elements(rest[1]);
                words.insert(words.end(), given.begin() + (given.empty() ? 0 : 1), given.end());
                return argv(words);
            }
            case Form::ExecL:
            case Form::SpawnL: {
                auto rest = after(form == Form::SpawnL ? 1 : 0);
                // The 'e' forms end with the environment.
                const bool env = name.back() == 'e';
                if (env && !rest.empty()) rest.pop_back();
                if (rest.size() >= 2) rest.erase(rest.begin() + 1);  // argv[0]
                return argv(rest);
            }
        }
        return shell_text(first);
    }

    void shell_out(const std::string& name, const Token& at, std::size_t open) {
        shell_ = &at;
        const std::string wrapping = name + "()";
        ShellCommand cmd = command_of(form_of(name), name, open);
        if (cmd.text) {
            skip_begin_ = cmd.first;
            skip_end_ = cmd.last;
            const std::string_view text = cmd.view.empty() ? std::string_view(*cmd.text) : cmd.view;
            const Token& origin = cmd.first < w_.size() ? t_[cmd.first] : at;
            if (cmd.dynamic.empty()) out_.literal_command("py.shell-out", wrapping, text, at, origin);
            else out_.analyze_nested(Language::Shell, text, origin, wrapping);
            if (cmd.text->find("sh -i") != std::string::npos || *cmd.text == "/bin/sh" || *cmd.text == "/bin/bash" ||
                *cmd.text == "sh" || *cmd.text == "bash")
                interactive_ = &at;
        }
        if (cmd.dynamic.empty()) return;
        DataSource source = DataSource::Computed;
        for (const auto& d : cmd.dynamic) source = std::max(source, data_source(t_, d.begin, d.end, data_sources()));
        out_.dynamic_command("py.dynamic-command", wrapping, source, cmd.part, at, kDynamicHint);
    }

    void dynamic_code(const std::string& name, const Token& at, std::size_t open, std::size_t close) {
        if (decodes_payload(open, close))
            return out_.add("py.decoded-exec", "T002", Severity::Critical, at,
                            name + "() of a decoded payload (obfuscated code execution)", kEvalHint);
        if (auto code = w_.fold(open + 1)) out_.analyze_nested(Language::Python, *code, at);
        bool nested_compile = false;
        for (std::size_t k = open + 1; k < close; ++k)
            if (w_.is(k, "compile") || w_.is(k, "__import__")) nested_compile = true;
        out_.add("py.dynamic-code", "T002", nested_compile ? Severity::Critical : Severity::High, at,
                 name + "() executes code built at run time", kEvalHint);
    }

    void dynamic_import(const std::string& name, const Token& at, std::size_t open) {
        int pieces = 0;
        auto module = w_.fold(open + 1, nullptr, &pieces);
        if (!module)
            return out_.add("py.dynamic-import", "T002", Severity::High, at,
                            name + "() imports a module whose name is computed at run time",
                            "Import modules with a plain import statement.");
        std::string root = module->substr(0, module->find('.'));
        import_module(*module, at);
        if (dangerous_modules().count(root)) {
            alias_.add("__dyn__" + std::to_string(at.line), *module);
            return out_.add("py.dynamic-import", "T002", pieces > 1 ? Severity::Critical : Severity::High, at,
                            name + "('" + *module + "')" + (pieces > 1 ? " with an obfuscated name" : ""),
                            "Import modules with a plain import statement.");
        }
        out_.add("py.dynamic-import", "T002", Severity::Low, at, name + "('" + *module + "')",
                 "Import modules with a plain import statement.");
    }

    void getattr_call(const Token& at, std::size_t open) {
        // getattr(obj, NAME ...): the second argument.
        const std::size_t k = w_.second_argument(open);
        int pieces = 0;
        auto attr = w_.fold(k, nullptr, &pieces);
        if (attr && is_dangerous_attribute(*attr))
            out_.add("py.getattr-obfuscation", "T002", pieces > 1 ? Severity::Critical : Severity::High, at,
                     "getattr(..., '" + *attr + "') reaches a dangerous function indirectly",
                     "Call functions directly by name; indirect access hides what the code does.");
    }

    // globals()['eval'], __builtins__.__dict__['exec'], sys.modules['os'].
    void subscript(std::size_t i) {
        bool namespace_object = false;
        for (std::size_t back = 1; back <= 6 && back <= i; ++back) {
            const Token& p = t_[i - back];
            if (p.kind == TokenKind::Newline) break;
            if (p.text == "globals" || p.text == "locals" || p.text == "vars" || p.text == "__builtins__" ||
                p.text == "__dict__" || p.text == "builtins" || p.text == "modules" || p.text == "__globals__")
                namespace_object = true;
        }
        if (!namespace_object) return;
        int pieces = 0;
        auto key = w_.fold(i + 1, nullptr, &pieces);
        if (key && (is_dangerous_attribute(*key) || dangerous_modules().count(*key)))
            out_.add("py.namespace-obfuscation", "T002", pieces > 1 ? Severity::Critical : Severity::High, t_[i],
                     "looks up '" + *key + "' through a namespace dictionary",
                     "Call functions directly by name; indirect access hides what the code does.");
    }

    void chmod_call(const Token& at, std::size_t open, std::size_t close) {
        for (std::size_t k = open + 1; k < close; ++k) {
            std::string_view s = t_[k].text;
            bool setuid_bit = s == "S_ISUID" || s == "S_ISGID";
            if (t_[k].kind == TokenKind::Number && (s.rfind("0o4", 0) == 0 || s.rfind("0o2", 0) == 0 ||
                                                    s.rfind("0o6", 0) == 0) && s.size() >= 6)
                setuid_bit = true;
            if (setuid_bit)
                return out_.add("py.setuid-bit", "T004", Severity::High, at, "sets a setuid/setgid bit",
                                "Use ordinary permissions such as 0o644 or 0o755.", Intent::Attack);
        }
    }

    // setuid(0), setresuid(0, 0, 0): asking to become root is an escalation
    // attempt; other ids are how a daemon drops privileges.
    void setuid_call(std::string_view name, const Token& at, std::size_t open) {
        const bool to_root = w_.kind(open + 1, TokenKind::Number) && t_[open + 1].text == "0";
        out_.add("py.setuid", "T004", Severity::High, at,
                 std::string(name) + "() changes the process's user or groups" + (to_root ? " to root" : ""),
                 "Code runs as an unprivileged user in the sandbox; do not change ids.",
                 to_root ? Intent::Attack : Intent::Risky);
    }

    // pickle.loads and kin run code chosen by whoever wrote the data. A
    // constant or text-decoded payload is code hidden from this validator;
    // data in a script that uses the network may come from anyone; data
    // from a file or a variable is the common, lesser case.
    void deserialize(std::string_view name, const Token& at, std::size_t open, std::size_t close) {
        if ((name == "yaml.load" || name == "yaml.load_all") && safe_yaml_loader(open, close)) return;
        if (name == "numpy.load" && !allows_pickle(open, close)) return;
        Severity severity = Severity::Medium;
        std::string source = "data";
        if (!takes_file(name) && constant_or_decoded_payload(open)) {
            severity = Severity::Critical;
            source = "an embedded payload";
        } else if (round_trip(open)) {
            return;  // loads(dumps(x)): a copy of the script's own object
        } else if (net_) {
            severity = Severity::High;
            source = "data in a script that uses the network";
        }
        out_.add("py.unsafe-deserialization", "T002", severity, at,
                 std::string(name) + "() of " + source + " (deserialization can run arbitrary code)",
                 "Use json, or yaml.safe_load, for data; unpickle only files this task wrote itself.");
    }

    // pickle.load(f), pandas.read_pickle('a.pkl'): the argument is a file
    // or a path, so a constant there names data, it is not data.
    static bool takes_file(std::string_view name) {
        std::string_view last = last_component(name);
        return name.rfind("yaml.", 0) != 0 && (last == "load" || last == "Unpickler" || last == "read_pickle");
    }

    bool safe_yaml_loader(std::size_t open, std::size_t close) const {
        for (std::size_t k = open + 1; k < close; ++k)
            if (w_.is(k, "SafeLoader") || w_.is(k, "CSafeLoader") || w_.is(k, "BaseLoader") || w_.is(k, "CBaseLoader"))
                return true;
        return false;
    }

    bool allows_pickle(std::size_t open, std::size_t close) const {
        for (std::size_t k = open + 1; k + 2 < close; ++k)
            if (w_.is(k, "allow_pickle") && w_.is(k + 1, "=") && w_.is(k + 2, "True")) return true;
        return false;
    }

    // The first argument is a constant, or a base-N decoding of anything.
    bool constant_or_decoded_payload(std::size_t open) const {
        std::size_t end = 0;
        if (w_.fold(open + 1, &end) && (w_.is(end, ")") || w_.is(end, ","))) return true;
        std::size_t k = open + 1;
        while (w_.kind(k, TokenKind::Identifier) && w_.dot_follows(k)) k += 2;
        return w_.kind(k, TokenKind::Identifier) && payload_decoders().count(t_[k].text) && w_.is(k + 1, "(");
    }

    // pickle.loads(pickle.dumps(x)), the deep-copy idiom.
    bool round_trip(std::size_t open) const {
        std::size_t k = open + 1;
        while (w_.kind(k, TokenKind::Identifier) && w_.dot_follows(k)) k += 2;
        return w_.is(k, "dumps") && w_.is(k + 1, "(");
    }

    // 10**9, 10**10 ... or literals of a billion and more: allocations
    // sized to exhaust memory.
    void huge_number(std::size_t i) {
        std::string_view s = t_[i].text;
        bool huge = false;
        if (w_.is(i + 1, "**") && w_.kind(i + 2, TokenKind::Number) && s == "10") {
            huge = std::atoi(std::string(t_[i + 2].text).c_str()) >= 9;
        } else if (s.find_first_not_of("0123456789_") == std::string::npos) {
            std::size_t digits = 0;
            for (char ch : s) digits += ch != '_';
            huge = digits >= 10;
        }
        if (!huge) return;
        // Only when the number sizes something: multiplied, or given to an allocator.
        bool sizes = (i > 0 && w_.is(i - 1, "*")) || w_.is(i + (w_.is(i + 1, "**") ? 3 : 1), "*");
        for (std::size_t back = 1; back <= 3 && back <= i; ++back) {
            std::string_view p = t_[i - back].text;
            if (p == "bytearray" || p == "bytes" || p == "range" || p == "zeros" || p == "ones" || p == "empty")
                sizes = true;
        }
        if (sizes)
            out_.add("py.huge-allocation", "T003", Severity::High, t_[i],
                     "allocation or loop sized " + std::string(s) + (w_.is(i + 1, "**") ? "**" + std::string(t_[i + 2].text) : ""),
                     "Size data to what the task needs; the sandbox's memory limit will kill the run.");
    }

    // while True: with no exit in its body, spawning or growing memory.
    void loop(std::size_t i) {
        std::size_t k = i + 1;
        bool infinite = (w_.is(k, "True") || (w_.kind(k, TokenKind::Number) && t_[k].text == "1")) && w_.is(k + 1, ":");
        if (!infinite) return;
        std::size_t body_start = k + 2, body_end = body_start;
        int col = t_[i].column;
        if (!w_.kind(body_start, TokenKind::Newline)) {
            while (body_end < w_.size() && !w_.kind(body_end, TokenKind::Newline)) ++body_end;
        } else {
            body_end = body_start + 1;
            while (body_end < w_.size()) {
                if (line_start(body_end) && t_[body_end].column <= col) break;
                ++body_end;
            }
        }
        bool exits = false, spawns = false, grows = false;
        for (std::size_t b = body_start; b < body_end; ++b) {
            std::string_view s = t_[b].text;
            if (t_[b].kind == TokenKind::Identifier) {
                if (s == "break" || s == "return" || s == "raise" || s == "exit" || s == "_exit") exits = true;
                if (s == "fork" || s == "Process" || s == "Popen" || s == "system" || s == "Thread" ||
                    s == "spawn" || s == "forkpty")
                    spawns = true;
                if (s == "append" || s == "extend" || s == "bytearray" || s == "insert") grows = true;
            }
            if (s == "+=" || (s == "+" && w_.is(b + 1, "="))) grows = true;
        }
        if (exits) return;
        if (spawns)
            return out_.add("py.fork-bomb", "T003", Severity::Critical, t_[i],
                            "infinite loop that creates processes or threads (fork bomb)",
                            "Bound the loop and the number of workers.");
        if (grows)
            out_.add("py.unbounded-allocation", "T003", Severity::High, t_[i],
                     "infinite loop that keeps growing data in memory",
                     "Bound the loop; stream data instead of accumulating it.");
    }

    void reverse_shell() {
        if (!net_) return;
        const Token* at = dup2_ ? dup2_ : (interactive_ ? interactive_ : nullptr);
        if (!at && shell_ && fork_) at = shell_;
        if (at)
            out_.add("py.reverse-shell", "T005", Severity::Critical, *at,
                     "network connection combined with stream redirection or a shell (reverse shell)",
                     "Do not give remote parties a shell; the sandbox has no network.", Intent::Attack);
    }

    std::span<const Token> t_;  // its size is stored, not computed from two pointers
    Walk w_;
    Findings& out_;
    AliasTable alias_;
    std::set<std::string> star_;
    bool ctypes_ = false;
    const Token* net_ = nullptr;
    const Token* dup2_ = nullptr;
    const Token* shell_ = nullptr;
    const Token* fork_ = nullptr;
    const Token* interactive_ = nullptr;
    std::size_t skip_begin_ = 0, skip_end_ = 0;  // tokens of the last constant command
};

}  // namespace

void rules_python(const std::vector<Token>& tokens, Findings& out) { PythonRules(tokens, out).run(); }

}  // namespace kiln::security::detail
