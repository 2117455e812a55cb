// kiln selftest: what this host really enforces. Probes the runtime, runs a
// trivial program in a real jail with the limits a run would get (the
// effective policy), and prints every control with whether it is in force
// and why, so an operator never has to assume.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <iostream>
#include <sstream>

#include "cli/cli.hpp"
#include "common/units.hpp"
#include "sandbox/runtime.hpp"
#include "security/run_limits.hpp"
#include "threat_model/catalogue.hpp"

namespace kiln::cli {
namespace {

using nlohmann::json;

json control_table(const sandbox::HostCapabilities& caps, bool validator_on, bool jail_ran) {
    json out = json::array();
    for (const auto& c : threat_model::catalogue().controls) {
        bool in_force = false;
        std::string detail = "not provided by the runtime";
        for (const auto& s : caps.controls)
            if (s.id == c.id) {
                in_force = s.in_force && jail_ran;
                detail = jail_ran ? s.detail : "the test jail did not run: " + s.detail;
            }
        if (c.id == "C004") {
            in_force = validator_on;
            detail = validator_on ? "validator enforces decisions (policy.validation=enforce)" : "policy.validation is not enforce";
        } else if (c.id == "C005") {
            detail = "command allowlist: set by the policy (on in the paranoid preset)";
        } else if (c.id == "C011") {
            detail = "audit log: in force while `kiln serve` can write it (see kiln audit verify)";
        } else if (c.id == "C013") {
            in_force = ::geteuid() == 0;
            detail = in_force ? "workspaces are RAM-backed tmpfs, removed at session end"
                              : "not root: workspaces are plain directories (no tmpfs, no quota)";
        }
        out.push_back({{"id", c.id}, {"name", c.name}, {"in_force", in_force}, {"detail", detail}});
    }
    return out;
}

std::string limits_line(const sandbox::SandboxSpec& spec) {
    const sandbox::Limits& l = spec.limits;
    std::ostringstream out;
    out << "memory " << format_size(l.memory_bytes) << ", cpus " << l.cpus << ", pids " << l.pids << ", timeout "
        << format_duration(l.timeout) << ", /tmp " << format_size(l.tmp_size_bytes) << ", seccomp "
        << choice_name(spec.seccomp);
    return out.str();
}

}  // namespace

Command register_selftest(CLI::App& app) {
    auto* sub = app.add_subcommand(
        "selftest", "Check which controls (C001-C013) are really in force on this host: probes the kernel and runs a jail");
    auto json_out = std::make_shared<bool>(false);
    sub->add_flag("--json", *json_out, "Print the report as JSON");
    return {sub, [json_out](Context& ctx) {
                auto policy = security::effective_policy(ctx.config);
                if (!policy) {
                    std::cerr << "kiln selftest: " << policy.error().what() << "\n";
                    return int(kExitConfig);
                }
                sandbox::NativeOptions opts;
                auto runtime = sandbox::make_native_runtime(opts);
                if (!runtime) {
                    std::cerr << "kiln selftest: the native runtime cannot start: " << runtime.error().what() << "\n";
                    return int(kExitFailure);
                }
                const auto& caps = (*runtime)->capabilities();
                sandbox::SandboxSpec spec;
                spec.argv = {"/bin/true"};
                spec.cwd = "/tmp";
                security::apply_run_limits(spec, *policy, ctx.config.sandbox);
                auto run = (*runtime)->run(spec, {});
                bool jail_ran = run.ok() && run->exit_code == 0;
                json controls = control_table(caps, ctx.config.policy.validation == ValidationMode::Enforce, jail_ran);
                json report = {{"runtime", std::string((*runtime)->name())},
                               {"rootless", caps.rootless},
                               {"lsm", caps.lsm},
                               {"cgroup", caps.cgroup},
                               {"jail", jail_ran ? json("ok") : json(run.ok() ? "exit " + std::to_string(run->exit_code.value_or(-1))
                                                                             : run.error().what())},
                               {"policy", policy->name},
                               {"limits", security::run_limits_json(spec)},
                               {"controls", controls},
                               {"notes", caps.notes}};
                if (*json_out) {
                    std::cout << report.dump(2) << "\n";
                } else {
                    std::cout << "runtime " << report["runtime"].get<std::string>() << (caps.rootless ? " (rootless)" : " (root)")
                              << ", LSM " << caps.lsm << ", cgroup " << caps.cgroup << "\n";
                    std::cout << "test jail: " << report["jail"].get<std::string>() << "\n";
                    std::cout << "limits (policy " << policy->name << "): " << limits_line(spec) << "\n\n";
                    for (const auto& c : controls)
                        std::cout << c["id"].get<std::string>() << "  " << (c["in_force"].get<bool>() ? "in force " : "NOT IN FORCE")
                                  << "  " << c["name"].get<std::string>() << ": " << c["detail"].get<std::string>() << "\n";
                    for (const auto& n : caps.notes) std::cout << "note: " << n << "\n";
                }
                return jail_ran ? int(kExitOk) : int(kExitFailure);
            }};
}

}  // namespace kiln::cli
