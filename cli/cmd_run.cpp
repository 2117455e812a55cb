// kiln run [flags] -- CMD ARGS...: runs one command in the native jail.
//
// Without --json the child's output streams through and kiln exits with the
// child's code; see exit_code_for() for the mapping (documented in
// docs/sandbox.md). With --json the ExecResult is printed as one object.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.hpp"
#include "sandbox/net.hpp"
#include "sandbox/runtime.hpp"
#include "security/decide.hpp"
#include "security/policy.hpp"
#include "security/trust_store.hpp"
#include "sandbox/image_store.hpp"
#include "security/run_limits.hpp"
#include "security/validator.hpp"
#include "threat_model/catalogue.hpp"
#include "tools/toolbox.hpp"

namespace kiln::cli {
namespace {

// Exit codes of kiln run beyond the child's own (docs/sandbox.md).
constexpr int kExitTimeout = 124;       // like timeout(1)
constexpr int kExitOom = 125;           // killed by the memory cgroup
constexpr int kExitNotExecutable = 126;
constexpr int kExitNotFound = 127;
constexpr int kExitRefused = 77;       // EX_NOPERM: the validator refused the command
constexpr int kExitJailFailed = 71;     // EX_OSERR: the jail could not be set up

using PendingNetwork = std::future<Result<std::unique_ptr<sandbox::net::Namespace>>>;

struct RunFlags {
    std::vector<std::string> command, env;
    std::string memory, cpus, pids, timeout, tmp_size, seccomp, validation, workspace, rootfs, cwd, stdin_file;
    std::string runtime, image;
    bool json = false;
    PendingNetwork network;  // see start_network()
};

// kiln run validates the command line as shell before the jail starts,
// against the controls this runtime reports in force. enforce: a deny (or an
// ask: there is nobody to ask on a command line) refuses the run; warn:
// findings are printed and the run goes on; off: nothing is checked.
// Returns false to refuse the run.
std::string shell_quote(const std::string& arg) {
    if (!arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%") == std::string::npos)
        return arg;
    std::string out = "'";
    for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

bool validate_before_run(const Context& ctx, const std::vector<std::string>& command,
                         const sandbox::HostCapabilities& caps, std::string& verdict) {
    const ValidationMode mode = ctx.config.policy.validation;
    if (mode == ValidationMode::Off) {
        verdict = "off";
        return true;
    }
    auto policy = security::effective_policy(ctx.config);
    if (!policy) {
        std::cerr << "kiln run: policy: " << policy.error().what() << "\n";
        verdict = "error";
        return false;
    }
    // The command line is validated the way /bin/sh would read it if the
    // words were typed: a `sh -c "..."` argument is itself shell.
    std::string line;
    for (const auto& a : command) line += (line.empty() ? "" : " ") + shell_quote(a);
    std::set<std::string> in_force = caps.in_force();
    if (mode == ValidationMode::Enforce) in_force.insert("C004");
    if (policy->command_allowlist_enabled) in_force.insert("C005");
    security::Assessment a = security::assess(security::Language::Shell, line, in_force, *policy);
    for (const auto& f : a.findings)
        std::cerr << "kiln run: finding " << f.rule << " (" << f.threat << ", " << security::to_string(f.severity)
                  << (f.attack_signature ? ", attack signature" : "") << "): " << f.message << " — " << f.hint << "\n";
    // The same decision as run_command's: an `ask` is approved by the trust
    // store (`kiln trust add`) or falls back to the policy; nobody is asked.
    security::TrustStore trust(trust_store_path(ctx.config));
    security::DecideInput in{a, mode, *policy, security::code_fingerprint(line), &trust, {},
                             "a command line cannot ask anyone"};
    security::Verdict v = security::decide(in);
    verdict = v.label;
    if (v.decision == security::Decision::Allow) {
        if (a.decision != security::Decision::Allow)
            std::cerr << "kiln run: " << v.how << " (risk " << threat_model::to_string(a.risk) << ")\n";
        return true;
    }
    std::cerr << "kiln run: refused by the validator (" << verdict << ", risk " << threat_model::to_string(a.risk)
              << ", policy " << policy->name << "): " << v.how
              << ". Use --validation warn to run it anyway, or change the command.\n";
    for (const auto& r : a.reasons) std::cerr << "kiln run: reason: " << r << "\n";
    return false;
}

bool apply_flags(Context& ctx, const RunFlags& f) {
    struct Item {
        const std::string& value;
        const char* key;
        const char* flag;
    };
    for (const Item& it : {Item{f.memory, "sandbox.memory", "--memory"}, Item{f.cpus, "sandbox.cpus", "--cpus"},
                           Item{f.pids, "sandbox.pids", "--pids"}, Item{f.timeout, "sandbox.timeout", "--timeout"},
                           Item{f.tmp_size, "sandbox.tmp_size", "--tmp-size"},
                           Item{f.seccomp, "sandbox.seccomp", "--seccomp"}, Item{f.rootfs, "sandbox.rootfs", "--rootfs"},
                           Item{f.validation, "policy.validation", "--validation"},
                           Item{f.runtime, "sandbox.runtime", "--runtime"}}) {
        if (!it.value.empty() && !ctx.set_from_flag(it.key, it.value, it.flag)) return false;
    }
    return f.image.empty() || ctx.set_from_flag(image_key(ctx.config), f.image, "--image");
}

// The run's limits are the effective policy's: the preset, policy.file,
// then sandbox.* from the config file, the environment and the flags above.
Result<sandbox::SandboxSpec> spec_from(const Context& ctx, const security::Policy& policy, const RunFlags& f) {
    sandbox::SandboxSpec spec;
    spec.argv = f.command;
    spec.env = f.env;
    security::apply_run_limits(spec, policy, ctx.config.sandbox);
    if (Status st = sandbox::image::apply_configured(spec, ctx.config); !st) return st.error();
    if (!f.workspace.empty()) {
        struct stat st {};
        if (::stat(f.workspace.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            return make_error("--workspace", "'" + f.workspace + "' is not a directory", ENOTDIR);
        char* real = ::realpath(f.workspace.c_str(), nullptr);
        spec.workspace_dir = real;
        std::free(real);
    }
    if (!f.cwd.empty()) spec.cwd = f.cwd;
    if (!f.stdin_file.empty()) {
        std::ostringstream text;
        if (f.stdin_file == "-") {
            text << std::cin.rdbuf();
        } else {
            std::ifstream in(f.stdin_file, std::ios::binary);
            if (!in) return sys_error("--stdin-file", "cannot open '" + f.stdin_file + "'");
            text << in.rdbuf();
        }
        spec.stdin_data = text.str();
    }
    return spec;
}

int exit_code_for(const sandbox::ExecResult& r) {
    if (r.timed_out) return kExitTimeout;
    if (r.oom_killed) return kExitOom;
    if (r.signal) return 128 + *r.signal;
    return r.exit_code.value_or(kExitFailure);
}

int exit_code_for(const Error& e) {
    if (e.step.rfind("execve", 0) == 0) return e.err == ENOENT ? kExitNotFound : kExitNotExecutable;
    return kExitJailFailed;
}

nlohmann::json to_json(const sandbox::ExecResult& r, const sandbox::SandboxSpec& spec, const std::string& verdict) {
    nlohmann::json j = {
        {"exit_code", r.exit_code ? nlohmann::json(*r.exit_code) : nlohmann::json(nullptr)},
        {"signal", r.signal ? nlohmann::json(*r.signal) : nlohmann::json(nullptr)},
        {"timed_out", r.timed_out}, {"oom_killed", r.oom_killed}, {"cancelled", r.cancelled},
        {"stdout", r.stdout_data}, {"stderr", r.stderr_data},
        {"stdout_truncated", r.stdout_truncated}, {"stderr_truncated", r.stderr_truncated},
        {"stdout_bytes", r.stdout_bytes}, {"stderr_bytes", r.stderr_bytes},
        {"duration_ms", r.duration.count()}, {"cpu_ms", r.cpu.count()},
        {"peak_memory_bytes", r.peak_memory_bytes},
        {"timings_us", {{"setup", r.timings.setup.count()}, {"run", r.timings.run.count()},
                        {"teardown", r.timings.teardown.count()}}},
        {"notes", r.notes}, {"validation", verdict}, {"limits", security::run_limits_json(spec)}};
    return j;
}

// As root, the jail's network namespace (about 0.6 ms of kernel work) is
// made on a second thread, started as soon as `run` is registered, while
// this one parses flags, loads the configuration and opens the runtime;
// the run is its only user, as with a fresh one made by clone(). Rootless,
// or when making it fails, the jail makes its own.
PendingNetwork start_network() {
    if (::geteuid() != 0) return {};
    return sandbox::net::Namespace::start();
}

std::unique_ptr<sandbox::net::Namespace> finish_network(PendingNetwork& pending, bool rootless) {
    if (!pending.valid()) return nullptr;
    auto made = pending.get();
    if (!made || rootless) return nullptr;
    return std::move(*made);
}

int run_action(Context& ctx, RunFlags& f) {
    if (!apply_flags(ctx, f)) return kExitUsage;
    auto policy = security::effective_policy(ctx.config);
    if (!policy) {
        std::cerr << "kiln run: " << policy.error().what() << "\n";
        return kExitConfig;
    }
    auto spec = spec_from(ctx, *policy, f);
    if (!spec) {
        std::cerr << "kiln run: " << spec.error().step << ": " << spec.error().message << "\n";
        return kExitUsage;
    }
    std::string verdict;
    sandbox::NativeOptions native;
    native.probe = false;       // its one run fails just as loudly
    native.single_run = true;   // and that run is all this runtime does
    // One run: no warm pool to fill for the docker runtime.
    auto runtime = tools::make_runtime(ctx.config, *policy, native, 0);
    if (!runtime) {
        std::cerr << "kiln run: " << runtime.error().what() << "\n";
        return kExitJailFailed;
    }
    if (!validate_before_run(ctx, f.command, (*runtime)->capabilities(), verdict)) return kExitRefused;
    auto network = finish_network(f.network, (*runtime)->capabilities().rootless);
    if (network) spec->network_fd = network->fd();
    sandbox::RunHooks hooks;
    if (!f.json) {
        hooks.on_output = [](std::string_view chunk, bool is_stderr) {
            std::FILE* out = is_stderr ? stderr : stdout;
            std::fwrite(chunk.data(), 1, chunk.size(), out);
            std::fflush(out);
        };
    }
    auto result = (*runtime)->run(*spec, hooks);
    if (!result) {
        std::cerr << "kiln run: " << result.error().what() << "\n";
        return exit_code_for(result.error());
    }
    if (f.json) {
        std::cout << to_json(*result, *spec, verdict).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
        if (result->stdout_truncated || result->stderr_truncated)
            std::cerr << "kiln run: output truncated at " << spec->limits.output_cap_bytes << " bytes per stream\n";
        if (result->timed_out) std::cerr << "kiln run: timed out after " << spec->limits.timeout.count() << " ms\n";
        if (result->oom_killed) std::cerr << "kiln run: killed: out of memory (limit " << spec->limits.memory_bytes << " bytes)\n";
    }
    return exit_code_for(*result);
}

}  // namespace

Command register_run(CLI::App& app) {
    auto* sub = app.add_subcommand("run", "Run one command in the sandbox: kiln run [flags] -- CMD ARGS...");
    auto f = std::make_shared<RunFlags>();
    f->network = start_network();
    sub->add_option("--memory", f->memory, "Memory limit, no swap (e.g. 256M)");
    sub->add_option("--cpus", f->cpus, "CPU quota in cores (e.g. 0.5)");
    sub->add_option("--pids", f->pids, "Process limit");
    sub->add_option("--timeout", f->timeout, "Wall-clock limit (e.g. 10s, 500ms)");
    sub->add_option("--tmp-size", f->tmp_size, "Size of the jail's /tmp (e.g. 64M)");
    sub->add_option("--workspace", f->workspace, "Host directory mounted read-write at /workspace");
    sub->add_option("--rootfs", f->rootfs, "Directory used for /usr, /bin, /lib, /etc instead of the host's");
    sub->add_option("--seccomp", f->seccomp, "Seccomp profile: default or strict");
    sub->add_option("--runtime", f->runtime, "native (Kiln's jail, the default) or docker (a container of --image)");
    sub->add_option("--image", f->image, kImageFlagHelp);
    sub->add_option("--validation", f->validation, "Validator mode: enforce, warn or off");
    sub->add_option("--env", f->env, "Extra environment variable KEY=VALUE (repeatable)");
    sub->add_option("--cwd", f->cwd, "Working directory inside the jail (default /workspace, else /tmp)");
    sub->add_option("--stdin-file", f->stdin_file, "Feed this file ('-': kiln's stdin) to the command's stdin");
    sub->add_flag("--json", f->json, "Print the result as one JSON object instead of streaming");
    sub->add_option("command", f->command, "Command and arguments, after --")->required();
    sub->footer("Exit status: the command's own; 128+N if killed by signal N; 124 on timeout; 125 when\n"
                "killed for memory; 126/127 not executable/not found; 71 if the jail could not be set up;\n"
                "77 if the validator refused the command (--validation enforce).");
    return {sub, [f](Context& ctx) { return run_action(ctx, *f); }};
}

}  // namespace kiln::cli
