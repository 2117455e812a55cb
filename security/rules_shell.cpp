// Shell rules. The token stream is cut into simple commands (split at
// ; & && || | newline and parentheses) and each command is judged by its
// name after wrappers (env, nohup, timeout, xargs...) are skipped. Commands
// handed to sh -c / bash -c / eval as constants are analysed as shell too.
#include <algorithm>
#include <map>
#include <set>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "security/rules.hpp"

namespace kiln::security::detail {

namespace {

constexpr const char* kHostHint = "Code in Kiln cannot reach the host or the kernel; remove this command.";
constexpr const char* kNetHint = "The sandbox has no network; read inputs from files in /workspace.";
constexpr const char* kPrivHint = "Everything runs as an unprivileged user; do the work without root.";

// Names and operators are views into the tokens' text and values.
struct Command {
    std::vector<const Token*> words;      // command name and arguments
    std::vector<const Token*> redirects;  // targets of < > >> etc., with their operator before
    std::vector<std::string_view> redirect_ops;
    const Token* heredoc = nullptr;
    bool piped_in = false;   // stdin comes from a pipe
    std::string_view pipe_source;  // name of the previous command in the pipeline
    bool pipeline_decodes = false;  // an earlier stage decodes (base64 -d, xxd -r) or downloads
    bool background = false; // ends with &
    std::size_t ni = 0;      // index of the command name in words (after env, nohup...)
    std::string_view name;   // its basename; empty when there is none

    // Ready for the next command, keeping the vectors' storage.
    void reset() {
        words.clear();
        redirects.clear();
        redirect_ops.clear();
        heredoc = nullptr;
        piped_in = false;
        pipe_source = {};
        pipeline_decodes = false;
        background = false;
        ni = 0;
        name = {};
    }
};

// The part after the last '/': a view into `path`.
std::string_view base(std::string_view path) {
    auto slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool is_separator(const Token& t) {
    if (t.kind == TokenKind::Newline) return true;
    if (t.kind != TokenKind::Operator) return false;
    std::string_view s = t.text;
    return s == ";" || s == "&" || s == "&&" || s == "||" || s == "|" || s == "|&" || s == ";;" || s == ";;&" ||
           s == "(" || s == ")";
}

bool is_redirect(const Token& t) {
    if (t.kind != TokenKind::Operator || t.text.empty()) return false;
    char c = t.text[0];
    return (c == '<' || c == '>' || (c == '&' && t.text.size() > 1 && t.text[1] == '>')) && t.text != "<(" &&
           t.text != ">(";
}

bool is_assignment(const Token& t) {
    auto eq = t.value.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    return std::all_of(t.value.begin(), t.value.begin() + static_cast<long>(eq),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// "-n", "--foo", "5": what follows a wrapper before the command it runs.
bool is_option_or_number(std::string_view v) {
    return !v.empty() && (v[0] == '-' || std::isdigit(static_cast<unsigned char>(v[0])));
}

// Words that run the next word as the command.
bool is_wrapper(std::string_view name) {
    static const NameSet w = {"env", "nohup", "exec", "command", "builtin", "time", "nice",
                                            "ionice", "stdbuf", "setsid", "xargs", "timeout", "then", "do",
                                            "else", "elif", "if", "while", "until", "!", "{", "busybox"};
    return w.count(name) > 0;
}

bool is_shell(std::string_view name) {
    return name == "sh" || name == "bash" || name == "dash" || name == "zsh" || name == "ksh" || name == "ash" ||
           name == "busybox";
}

class ShellRules {
public:
    ShellRules(const std::vector<Token>& tokens, Findings& out) : t_(tokens), out_(out) {}

    void run() {
        fork_bomb();
        split_and_judge();
    }

private:
    // Cuts the tokens into commands and judges each as soon as it ends
    // (splitting has no side effect, so findings come in the same order as
    // splitting everything first). One Command is reused throughout.
    void split_and_judge() {
        Command cur;
        bool prev_decodes = false;
        auto finish = [&](const Token* sep) {
            if (cur.words.empty() && cur.redirects.empty()) return;
            bool pipe = sep && (sep->text == "|" || sep->text == "|&");
            cur.background = sep && sep->text == "&";
            cur.ni = name_index(cur);
            cur.name = cur.ni < cur.words.size() ? base(cur.words[cur.ni]->value) : std::string_view{};
            std::string_view name = cur.name;
            bool decodes = decodes_or_downloads(cur);
            command(cur);
            cur.reset();
            if (pipe) {
                cur.piped_in = true;
                cur.pipe_source = name;
                cur.pipeline_decodes = prev_decodes || decodes;
                prev_decodes = cur.pipeline_decodes;
            } else {
                prev_decodes = false;
            }
        };
        for (std::size_t i = 0; i < t_.size(); ++i) {
            const Token& tk = t_[i];
            if (is_separator(tk)) {
                finish(&tk);
            } else if (is_redirect(tk)) {
                if (i + 1 < t_.size() && t_[i + 1].kind == TokenKind::Word) {
                    cur.redirects.push_back(&t_[i + 1]);
                    cur.redirect_ops.emplace_back(tk.text);
                    ++i;
                }
            } else if (tk.kind == TokenKind::String) {
                cur.heredoc = &tk;
            } else if (tk.kind == TokenKind::Word) {
                cur.words.push_back(&tk);
            }
        }
        finish(nullptr);
    }

    // Index of the command name in c.words after assignments and wrappers.
    std::size_t name_index(const Command& c) const {
        std::size_t i = 0;
        while (i < c.words.size()) {
            const Token& w = *c.words[i];
            if (is_assignment(w)) {
                ++i;
            } else if (is_wrapper(base(w.value)) && i + 1 < c.words.size()) {
                ++i;
                // Options of the wrapper (timeout 5, nice -n 10, env -i).
                while (i < c.words.size() && is_option_or_number(c.words[i]->value)) ++i;
            } else {
                break;
            }
        }
        return i;
    }

    static bool has_arg(const Command& c, std::size_t from, std::initializer_list<std::string_view> any) {
        for (std::size_t i = from; i < c.words.size(); ++i)
            for (auto a : any)
                if (c.words[i]->value == a) return true;
        return false;
    }

    bool decodes_or_downloads(const Command& c) const {
        std::string_view n = c.name;
        std::size_t i = c.ni;
        if (n == "base64" || n == "base32") return has_arg(c, i + 1, {"-d", "--decode", "-D"});
        if (n == "xxd") return has_arg(c, i + 1, {"-r", "-rp", "-r -p"});
        return n == "curl" || n == "wget" || n == "openssl" || n == "gunzip" || n == "zcat" || n == "rev" ||
               n == "tr" || n == "printf";
    }

    void command(const Command& c) {
        for (const auto* w : c.words) word_checks(*w);
        for (std::size_t r = 0; r < c.redirects.size(); ++r) redirect(*c.redirects[r], c.redirect_ops[r]);
        std::size_t ni = c.ni;
        if (ni >= c.words.size()) return;
        const Token& name_tok = *c.words[ni];
        std::string_view name = c.name;
        allowlist(c, ni);
        if (name_tok.dynamic)
            out_.add("sh.dynamic-command", "T002", Severity::High, name_tok,
                     "command name comes from an expansion (" + std::string(name_tok.text.substr(0, 60)) + ")",
                     "Write the command name literally.");
        if (name_tok.text.find("$'") != std::string::npos && name_tok.text.find('\\') != std::string::npos)
            out_.add("sh.obfuscated-command", "T002", Severity::Critical, name_tok,
                     "command name hidden in $'...' escapes: " + std::string(name), "Write the command name literally.");
        rule_by_name(c, ni, name, name_tok);
        // sudo CMD / doas CMD: judge CMD as well as the privilege request.
        if (name == "sudo" || name == "doas" || name == "pkexec") {
            std::size_t k = ni + 1;
            while (k < c.words.size() && c.words[k]->value.rfind("-", 0) == 0) ++k;
            if (k < c.words.size()) rule_by_name(c, k, base(c.words[k]->value), *c.words[k]);
        }
    }

    void word_checks(const Token& w) {
        check_sensitive_string(w, w.value, out_);
        if (w.text.find("IFS") != std::string::npos &&
            (w.text.find("$IFS") != std::string::npos || w.text.find("${IFS") != std::string::npos))
            out_.add("sh.ifs-obfuscation", "T002", Severity::High, w, "uses $IFS in place of spaces (filter evasion)",
                     "Write arguments separated by plain spaces.");
    }

    void redirect(const Token& target, std::string_view op) {
        check_sensitive_string(target, target.value, out_);
        bool writes = op.find('>') != std::string::npos;
        if (writes && (target.value.rfind("/dev/sd", 0) == 0 || target.value.rfind("/dev/nvme", 0) == 0 ||
                       target.value.rfind("/dev/vd", 0) == 0))
            out_.add("destructive.block-device", "T003", Severity::Critical, target,
                     "overwrites a block device: " + std::string(target.value), "Write to files under /workspace.");
    }

    void allowlist(const Command& c, std::size_t ni) {
        const Policy& p = out_.policy();
        if (!p.command_allowlist_enabled) return;
        static const std::set<std::string_view> keywords = {"if", "then", "else", "elif", "fi", "for", "while", "until",
                                                       "do", "done", "case", "esac", "in", "function", "{", "}",
                                                       "[[", "]]", "!", "[", "test", "cd", "export", "read",
                                                       "local", "return", "exit", "shift", "set", "unset", "true",
                                                       "false", ":", "echo", "printf"};
        const std::string_view name = base(c.words[ni]->value);
        if (keywords.count(name) || name.empty()) return;
        // A for-loop's word list or a case pattern is not a command.
        if (name.find(')') != std::string::npos) return;
        if (std::find(p.command_allowlist.begin(), p.command_allowlist.end(), name) != p.command_allowlist.end())
            return;
        out_.add_at("sh.command-not-allowed", "T002", Severity::Critical, c.words[ni]->line, c.words[ni]->column,
                    "command '" + std::string(name) + "' is not on the policy's allowlist",
                    "Use only allowlisted commands: policy '" + p.name + "' allows " +
                        std::to_string(p.command_allowlist.size()) + " commands (see kiln check --help).",
                    {"C005"});
    }

    enum class NameKind { Kernel, Privilege, Network, Other };
    struct NameRule {
        NameKind kind;
        const char* what = "";  // for Kernel and Privilege: what the command does
        Intent intent = Intent::Risky;
    };

    // Every command name rule_by_name looks at, so that any other command
    // (ls, sort, awk...) is done after one hash lookup.
    static const NameRule* find_name_rule(std::string_view name) {
        static const NameMap<NameRule> table = [] {
            NameMap<NameRule> t;
            for (const auto& k : kernel_commands()) t.add(k.name, NameRule{NameKind::Kernel, k.what, k.intent});
            for (const auto& [n, what] : privilege_commands()) t.add(n, NameRule{NameKind::Privilege, what});
            for (std::string_view n : network_clients()) t.add(n, NameRule{NameKind::Network});
            for (std::string_view n : {"chmod", "chown", "sh", "bash", "dash", "zsh", "ksh", "ash", "busybox",
                                       "eval", "source", ".", "python", "python3", "perl", "ruby", "node", "php",
                                       "env", "printenv", "export", "set", "declare", "rm", "mke2fs", "wipefs",
                                       "fdisk", "parted", "sfdisk", "dd", "shred", "yes", "fallocate", "truncate",
                                       "cdk"})
                t.add(n, NameRule{NameKind::Other});
            return t;
        }();
        return table.find(name);
    }

    using Described = std::pair<std::string_view, const char*>;
    struct KernelCommand {
        std::string_view name;
        const char* what;
        Intent intent;
    };

    // Attack: the command exists to load kernel code or to leave the
    // sandbox's root and namespaces. Risky: tools with ordinary uses
    // (a debugger, a cluster client), or that fail harmlessly in a jail.
    static const std::vector<KernelCommand>& kernel_commands() {
        using enum Intent;
        static const std::vector<KernelCommand> kernel = {
            {"mount", "mounts filesystems", Attack}, {"umount", "unmounts filesystems", Attack},
            {"nsenter", "enters namespaces", Attack}, {"unshare", "creates namespaces", Attack},
            {"chroot", "changes the root directory", Attack}, {"pivot_root", "changes the root mount", Attack},
            {"insmod", "loads kernel modules", Attack}, {"rmmod", "unloads kernel modules", Attack},
            {"modprobe", "loads kernel modules", Attack}, {"kexec", "replaces the running kernel", Attack},
            {"debugfs", "edits filesystems directly", Attack}, {"docker", "drives the container runtime", Risky},
            {"podman", "drives the container runtime", Risky},
            {"ctr", "drives the container runtime", Risky}, {"runc", "drives the container runtime", Risky},
            {"crictl", "drives the container runtime", Risky}, {"kubectl", "drives the cluster", Risky},
            {"sysctl", "changes kernel tunables", Risky}, {"gdb", "traces processes (ptrace)", Risky},
            {"strace", "traces processes (ptrace)", Risky}, {"ltrace", "traces processes (ptrace)", Risky},
            {"losetup", "attaches loop devices", Risky}, {"mknod", "creates device nodes", Risky},
            {"dmsetup", "drives device-mapper", Risky}};
        return kernel;
    }

    static const std::vector<Described>& privilege_commands() {
        static const std::vector<Described> priv = {
            {"sudo", "runs as another user"}, {"su", "switches user"}, {"doas", "runs as another user"},
            {"pkexec", "runs as another user"}, {"setcap", "grants file capabilities"},
            {"capsh", "manipulates capabilities"}, {"passwd", "changes passwords"},
            {"useradd", "creates users"}, {"usermod", "changes users"}, {"visudo", "edits sudoers"},
            {"chpasswd", "changes passwords"}, {"newgrp", "changes group"}, {"setpriv", "changes privileges"}};
        return priv;
    }

    static const std::vector<std::string_view>& network_clients() {
        static const std::vector<std::string_view> net = {"curl", "wget", "ssh", "scp", "sftp", "rsync", "telnet",
                                                          "ftp", "tftp", "ncat", "nc", "netcat", "socat", "nmap",
                                                          "dig", "nslookup", "ping", "aria2c", "lynx", "links",
                                                          "openssl", "sshpass", "smbclient"};
        return net;
    }

    void rule_by_name(const Command& c, std::size_t ni, std::string_view name, const Token& at) {
        const NameRule* rule = find_name_rule(name);
        if (!rule && name.rfind("mkfs", 0) != 0) return;
        if (rule && rule->kind == NameKind::Kernel) {
            const bool lists = name == "mount" && lists_mounts(c, ni);
            const bool breaks_out = (name == "docker" || name == "podman") && opens_host(c, ni);
            Intent intent = lists ? Intent::Risky : breaks_out ? Intent::Attack : rule->intent;
            return out_.add("sh.kernel-surface", "T001", Severity::High, at,
                            std::string(name) + " " +
                                (lists ? "lists mounted filesystems"
                                       : breaks_out ? "starts a container with the host's root, pids or privileges"
                                                    : rule->what),
                            kHostHint, intent);
        }
        if (rule && rule->kind == NameKind::Privilege)
            return out_.add("sh.privilege", "T004", Severity::High, at, std::string(name) + " " + rule->what,
                            kPrivHint);
        if (name == "chmod") return chmod(c, ni, at);
        if (name == "cdk") return cdk(c, ni, at);
        if (name == "chown" && has_arg(c, ni + 1, {"root", "root:root", "0", "0:0"}))
            return out_.add("sh.privilege", "T004", Severity::Medium, at, "chown to root", kPrivHint);
        if (is_shell(name) || name == "eval" || name == "source" || name == ".") return shell_exec(c, ni, name, at);
        if (name == "python" || name == "python3" || name == "perl" || name == "ruby" || name == "node" ||
            name == "php")
            return interpreter(c, ni, name, at);
        if (rule && rule->kind == NameKind::Network) return network(c, ni, name, at);
        if (name == "env" || name == "printenv" || (name == "export" && has_arg(c, ni + 1, {"-p"})) ||
            (name == "set" && c.words.size() == ni + 1) || (name == "declare" && has_arg(c, ni + 1, {"-x", "-p"}))) {
            out_.note_secret_read(at, "the whole environment");
            return out_.add("sh.env-dump", "T005", Severity::High, at, std::string(name) + " dumps the environment",
                            "Read only the variables you need, e.g. \"$HOME\".");
        }
        if (name == "rm") return rm(c, ni, at);
        if (name.rfind("mkfs", 0) == 0 || name == "mke2fs" || name == "wipefs" || name == "fdisk" ||
            name == "parted" || name == "sfdisk")
            return out_.add("destructive.filesystem", "T003", Severity::Critical, at,
                            std::string(name) + " rewrites a filesystem or partition table", "Work with files under /workspace.");
        if (name == "dd" || name == "shred") return dd(c, ni, name, at);
        if (name == "yes" && !c.piped_in && !c.redirects.empty())
            out_.add("sh.fill-disk", "T003", Severity::Medium, at, "yes redirected to a file fills the disk",
                     "Write bounded output, e.g. yes | head -n 1000.");
        if (name == "fallocate" || name == "truncate")
            out_.add("sh.fill-disk", "T003", Severity::Low, at, std::string(name) + " allocates file space",
                     "Keep files small; /workspace and /tmp have quotas.");
    }

    void chmod(const Command& c, std::size_t ni, const Token& at) {
        for (std::size_t i = ni + 1; i < c.words.size(); ++i) {
            std::string_view m = c.words[i]->value;
            bool symbolic = m.find('s') != std::string::npos && m.find('+') != std::string::npos &&
                            m.find_first_not_of("ugoa+-=rwxXst,") == std::string::npos;
            bool octal = m.size() == 4 && m.find_first_not_of("01234567") == std::string::npos &&
                         (m[0] == '2' || m[0] == '4' || m[0] == '6');
            if (symbolic || octal)
                return out_.add("sh.setuid-bit", "T004", Severity::High, at,
                                "chmod " + std::string(m) + " sets a setuid/setgid bit", "Use ordinary permissions such as 644 or 755.",
                                Intent::Attack);
        }
    }

    // `mount` alone, or with only -l / -t TYPE, prints the mount table as
    // /proc/self/mounts does; anything naming a source or target (or -a,
    // --bind, --move) mounts.
    static bool lists_mounts(const Command& c, std::size_t ni) {
        for (std::size_t i = ni + 1; i < c.words.size(); ++i) {
            std::string_view a = c.words[i]->value;
            if (a == "-l" || a == "-v") continue;
            if (a == "-t" || a == "--types") {
                ++i;
                continue;
            }
            return false;
        }
        return true;
    }

    // docker run --privileged / --pid=host / -v /:/host / --cap-add
    // SYS_ADMIN: a container that holds the host, the classic way out.
    static bool opens_host(const Command& c, std::size_t ni) {
        for (std::size_t i = ni + 1; i < c.words.size(); ++i) {
            std::string_view a = c.words[i]->value;
            std::string_view next = i + 1 < c.words.size() ? std::string_view(c.words[i + 1]->value) : "";
            if (a == "--privileged" || a == "--pid=host" || (a == "--pid" && next == "host")) return true;
            if (a.rfind("--cap-add", 0) == 0 && (a.find("SYS_ADMIN") != a.npos || a.find("ALL") != a.npos ||
                                                 next == "SYS_ADMIN" || next == "ALL"))
                return true;
            std::string_view volume = a.rfind("--volume=", 0) == 0 ? a.substr(9)
                                      : (a == "-v" || a == "--volume") ? next
                                                                       : std::string_view{};
            if (volume == "/" || volume.rfind("/:", 0) == 0) return true;
        }
        return false;
    }

    // CDK (cdk-team/CDK) is a container-escape toolkit; its subcommands do
    // not overlap the AWS CDK's (synth, deploy, diff ...).
    void cdk(const Command& c, std::size_t ni, const Token& at) {
        if (ni + 1 >= c.words.size()) return;
        std::string_view sub = c.words[ni + 1]->value;
        if (sub == "evaluate" || sub == "eva" || sub == "run" || sub == "auto-escape")
            out_.add("escape.tooling", "T001", Severity::High, at, "cdk " + std::string(sub) + " (container-escape toolkit)",
                     "Kiln runs code for the user's task; do not run container-escape tooling.", Intent::Attack);
    }

    // sh -c "...", bash script, eval "...", source file, and anything
    // piped into a shell.
    void shell_exec(const Command& c, std::size_t ni, std::string_view name, const Token& at) {
        if (c.piped_in && !after_xargs(c, ni)) {
            bool bad = c.pipeline_decodes;
            return out_.add("sh.pipe-to-shell", "T002", bad ? Severity::Critical : Severity::High, at,
                            std::string(bad ? "decoded or downloaded data" : "output of " + std::string(c.pipe_source)) +
                                " piped into " + std::string(name),
                            "Run the commands directly instead of generating them into a shell.");
        }
        if (c.heredoc && is_shell(name)) out_.analyze_nested(Language::Shell, c.heredoc->value, *c.heredoc);
        const Token* script = nullptr;
        bool interactive = false;
        for (std::size_t i = ni + 1; i < c.words.size(); ++i) {
            std::string_view a = c.words[i]->value;
            if (name != "eval" && (a == "-c" || (a.size() > 1 && a[0] == '-' && a.back() == 'c')) &&
                i + 1 < c.words.size()) {
                script = c.words[i + 1];
                break;
            }
            if (a == "-i") interactive = true;
            if (name == "eval") {
                script = c.words[i];
                break;
            }
        }
        if (interactive)
            out_.add("sh.interactive-shell", "T002", Severity::High, at, std::string(name) + " -i starts an interactive shell",
                     "Run the commands directly.");
        if (!script) return;
        if (script->dynamic)
            return out_.add("sh.dynamic-eval", "T002", Severity::High, *script,
                            std::string(name) + " runs a command string built from variables",
                            "Run the commands directly; do not build shell code from data.");
        out_.literal_command("sh.shell-out", std::string(name) + (name == "eval" ? "" : " -c"), script->value, at,
                             *script);
    }

    // ... | xargs sh -c '...': xargs reads the pipe and hands the shell
    // arguments; the shell's own input is not the pipe.
    static bool after_xargs(const Command& c, std::size_t ni) {
        for (std::size_t i = 0; i < ni; ++i)
            if (base(c.words[i]->value) == "xargs") return true;
        return false;
    }

    void interpreter(const Command& c, std::size_t ni, std::string_view name, const Token& at) {
        if (c.piped_in && c.pipeline_decodes)
            return out_.add("sh.pipe-to-shell", "T002", Severity::Critical, at,
                            "decoded or downloaded data piped into " + std::string(name), "Run the code directly.");
        for (std::size_t i = ni + 1; i + 1 < c.words.size(); ++i) {
            std::string_view a = c.words[i]->value;
            if (a != "-c" && a != "-e" && a != "--eval") continue;
            const Token& code = *c.words[i + 1];
            if (code.dynamic)
                return out_.add("sh.dynamic-eval", "T002", Severity::High, code,
                                std::string(name) + " " + std::string(a) + " runs code built from variables",
                                "Run a script file instead.");
            if (name.rfind("python", 0) == 0) out_.analyze_nested(Language::Python, code.value, code);
            else if (name == "node") out_.analyze_nested(Language::JavaScript, code.value, code);
            return;
        }
    }

    void network(const Command& c, std::size_t ni, std::string_view name, const Token& at) {
        out_.note_network_use(at);
        bool exec_flag = false, listen = false;
        for (std::size_t i = ni + 1; i < c.words.size(); ++i) {
            std::string_view a = c.words[i]->value;
            if (a == "-e" || a == "-c" || a == "--exec" || a == "--sh-exec" || a.rfind("exec:", 0) == 0 ||
                a.rfind("EXEC:", 0) == 0 || a.rfind("system:", 0) == 0 || a.rfind("SYSTEM:", 0) == 0 ||
                a.find(",pty") != std::string::npos)
                exec_flag = true;
            if (a == "-l" || a == "-lp" || a == "-lvp" || a == "-lnvp" || a.rfind("TCP-LISTEN", 0) == 0 ||
                a.rfind("tcp-listen", 0) == 0)
                listen = true;
        }
        if (exec_flag && (name == "nc" || name == "ncat" || name == "netcat" || name == "socat"))
            return out_.add("sh.reverse-shell", "T005", Severity::Critical, at,
                            std::string(name) + " wired to a program (reverse or bind shell)",
                            "Do not give remote parties a shell; the sandbox has no network.", Intent::Attack);
        if (listen)
            return out_.add("sh.network-server", "T005", Severity::High, at, std::string(name) + " listens for connections",
                            kNetHint);
        out_.add("sh.network", "T005", Severity::Medium, at, std::string(name) + " is a network client", kNetHint);
    }

    void rm(const Command& c, std::size_t ni, const Token& at) {
        bool recursive = false;
        std::vector<const Token*> targets;
        for (std::size_t i = ni + 1; i < c.words.size(); ++i) {
            std::string_view a = c.words[i]->value;
            if (a == "--no-preserve-root")
                return out_.add("destructive.rm-root", "T003", Severity::Critical, at,
                                "rm --no-preserve-root", "Delete only files under /workspace.");
            if (a.size() > 1 && a[0] == '-' && a[1] != '-' && (a.find('r') != std::string::npos || a.find('R') != std::string::npos))
                recursive = true;
            else if (a == "--recursive")
                recursive = true;
            else if (a.empty() || a[0] != '-')
                targets.push_back(c.words[i]);
        }
        if (!recursive) return;
        static const std::set<std::string> roots = {
            "/", "/*", "~", "~/", "~/*", "$HOME", "$HOME/", "$HOME/*", "${HOME}", "/etc", "/usr", "/bin",
            "/sbin", "/lib", "/lib64", "/boot", "/var", "/home", "/root", "/opt", "/srv", "/dev", "/proc", "/sys",
            "/.", "/..", ".*", "/etc/*", "/usr/*", "/home/*", "/var/*"};
        for (const auto* t : targets) {
            std::string v(t->value);
            while (v.size() > 1 && v.back() == '/') v.pop_back();
            if (roots.count(v) || roots.count(std::string(t->value)))
                return out_.add("destructive.rm-root", "T003", Severity::Critical, *t,
                                "rm -r of a system or home directory: " + std::string(t->value),
                                "Delete only files under /workspace.");
        }
    }

    void dd(const Command& c, std::size_t ni, std::string_view name, const Token& at) {
        for (std::size_t i = ni + 1; i < c.words.size(); ++i) {
            std::string v(c.words[i]->value);
            if (name == "dd" && v.rfind("of=", 0) != 0) continue;
            if (name == "dd") v = v.substr(3);
            if (v.rfind("/dev/", 0) == 0 && v != "/dev/null" && v != "/dev/stdout" && v != "/dev/stderr")
                return out_.add("destructive.block-device", "T003", Severity::Critical, at,
                                std::string(name) + " writes to a device: " + v, "Write to files under /workspace.");
        }
        if (name == "dd") {
            bool from_zero = has_arg(c, ni + 1, {"if=/dev/zero", "if=/dev/urandom", "if=/dev/random"});
            bool counted = false;
            for (std::size_t i = ni + 1; i < c.words.size(); ++i)
                if (c.words[i]->value.rfind("count=", 0) == 0) counted = true;
            if (from_zero && !counted)
                out_.add("sh.fill-disk", "T003", Severity::Medium, at, "dd from an endless device without count=",
                         "Give dd a count= so the output is bounded.");
        }
    }

    // name() { ... name | name & ... } : a function that calls itself in the
    // background or through a pipe is a fork bomb, whatever its name.
    void fork_bomb() {
        for (std::size_t i = 0; i + 3 < t_.size(); ++i) {
            const Token& n = t_[i];
            std::size_t k = i + 1;
            if (n.kind != TokenKind::Word) continue;
            if (n.value == "function" && t_[k].kind == TokenKind::Word) continue;
            if (!(t_[k].text == "(" && t_[k + 1].text == ")")) continue;
            std::size_t body = k + 2;
            int self_calls = 0;
            bool spawn = false;
            for (std::size_t b = body; b < t_.size() && b < body + 64; ++b) {
                if (t_[b].kind == TokenKind::Word && t_[b].value == n.value) ++self_calls;
                if (t_[b].text == "&" || t_[b].text == "|") spawn = true;
                if (t_[b].kind == TokenKind::Word && t_[b].value == "}") break;
            }
            if (self_calls >= 1 && spawn)
                out_.add("sh.fork-bomb", "T003", Severity::Critical, n,
                         "function '" + std::string(n.value) + "' spawns copies of itself (fork bomb)",
                         "Do not write self-replicating functions; the pids limit will kill the run.");
        }
        infinite_spawn();
    }

    // while true; do ... & done  /  while :; do cmd & done
    void infinite_spawn() {
        for (std::size_t i = 0; i + 2 < t_.size(); ++i) {
            if (t_[i].kind != TokenKind::Word || t_[i].value != "while") continue;
            std::string_view cond = t_[i + 1].value;
            if (cond != "true" && cond != ":" && cond != "1") continue;
            bool background = false, exits = false;
            for (std::size_t b = i + 2; b < t_.size() && b < i + 200; ++b) {
                if (t_[b].kind == TokenKind::Word && t_[b].value == "done") break;
                if (t_[b].kind == TokenKind::Operator && t_[b].text == "&") background = true;
                if (t_[b].kind == TokenKind::Word && (t_[b].value == "break" || t_[b].value == "exit")) exits = true;
            }
            if (background && !exits)
                out_.add("sh.infinite-spawn", "T003", Severity::Critical, t_[i],
                         "infinite loop starting background processes", "Bound the loop and wait for children.");
        }
    }

    std::span<const Token> t_;  // its size is stored, not computed from two pointers
    Findings& out_;
};

}  // namespace

void rules_shell(const std::vector<Token>& tokens, Findings& out) { ShellRules(tokens, out).run(); }

}  // namespace kiln::security::detail
