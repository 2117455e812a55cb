// kiln check [--language L] [--preset P] [--json] [--controls C] FILE|-
//
// Runs the security validator on one file and prints the findings, the
// per-threat scores and the decision. Exit 0 allow, 1 approval needed,
// 2 deny, 64 usage error, 78 bad policy.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/cli.hpp"
#include "sandbox/runtime.hpp"
#include "security/validator.hpp"

namespace kiln::cli {
namespace {

struct CheckFlags {
    std::string file, language, preset, controls = "runtime";
    bool json = false;
};

bool read_input(const std::string& file, std::string& code) {
    std::stringstream buf;
    if (file == "-") {
        buf << std::cin.rdbuf();
    } else {
        std::ifstream in(file, std::ios::binary);
        if (!in) return false;
        buf << in.rdbuf();
    }
    code = buf.str();
    return true;
}

// The controls in force for the run this check stands for. "runtime" asks
// the native runtime what it would enforce on this host, then adds what
// the tools layer would (C004 validation is on: this is it; C005 when the
// policy's allowlist is on). C011 depends on a running server's audit log,
// so a one-shot check does not claim it; C013 is never in force (nothing is
// encrypted at rest).
Result<std::set<std::string>> controls_for(const std::string& spec,
                                           const security::Policy& policy) {
    std::set<std::string> in_force;
    if (spec == "none") return in_force;
    if (spec == "all") {
        for (const auto& c : threat_model::catalogue().controls) in_force.insert(c.id);
        return in_force;
    }
    if (spec == "runtime") {
        sandbox::NativeOptions opts;
        opts.probe = false;
        auto rt = sandbox::make_native_runtime(opts);
        if (!rt) return std::move(rt).error().wrap("probe the sandbox for --controls runtime");
        in_force = (*rt)->capabilities().in_force();
        in_force.insert("C004");
        if (policy.command_allowlist_enabled) in_force.insert("C005");
        return in_force;
    }
    std::stringstream ss(spec);
    for (std::string id; std::getline(ss, id, ',');) {
        if (!threat_model::catalogue().find_control(id))
            return make_error("--controls", "unknown control '" + id + "' (use C001..C013, all, none or runtime)");
        in_force.insert(id);
    }
    return in_force;
}

void print_human(const security::Assessment& a, const std::string& file) {
    for (const auto& f : a.findings) {
        std::cout << file << ":" << f.line << ":" << f.column << ": " << security::to_string(f.severity) << " ["
                  << f.rule << " " << f.threat << "] " << f.message << "\n    hint: " << f.hint << "\n";
    }
    if (a.findings.empty()) std::cout << file << ": no findings\n";
    std::cout << "\nthreat  name                   score  level     mitigated\n";
    for (const auto& t : a.threats) {
        std::printf("%-7s %-22s %5.2f  %-9s %s\n", t.id.c_str(), t.name.c_str(), t.score,
                    threat_model::to_string(t.level).c_str(), t.mitigated ? "yes" : "no");
    }
    std::cout << "\ndecision: " << security::to_string(a.decision) << " (risk " << threat_model::to_string(a.risk)
              << ")\n";
    for (const auto& r : a.reasons) std::cout << "  - " << r << "\n";
}

int exit_code(security::Decision d) {
    switch (d) {
        case security::Decision::Allow: return 0;
        case security::Decision::Ask: return 1;
        case security::Decision::Deny: return 2;
    }
    return 2;
}

int run_check(Context& ctx, const CheckFlags& f) {
    if (!f.preset.empty() && !ctx.set_from_flag("policy.preset", f.preset, "--preset")) return kExitUsage;
    auto policy = security::effective_policy(ctx.config);
    if (!policy) {
        std::cerr << "kiln check: " << policy.error().what() << "\n";
        return kExitConfig;
    }
    std::string code;
    if (!read_input(f.file, code)) {
        std::cerr << "kiln check: cannot read " << f.file << ": " << std::strerror(errno) << "\n";
        return kExitUsage;
    }
    auto lang = f.language.empty() ? security::guess_language(f.file, code) : security::parse_language(f.language);
    if (!lang) {
        std::cerr << "kiln check: --language: " << lang.error().message << "\n";
        return kExitUsage;
    }
    auto controls = controls_for(f.controls, *policy);
    if (!controls) {
        std::cerr << "kiln check: " << controls.error().what() << "\n";
        return kExitUsage;
    }
    security::Assessment a = security::assess(*lang, code, *controls, *policy);
    if (f.json) std::cout << a.to_json().dump(2) << "\n";
    else print_human(a, f.file);
    return exit_code(a.decision);
}

}  // namespace

Command register_check(CLI::App& app) {
    auto flags = std::make_shared<CheckFlags>();
    auto* sub = app.add_subcommand("check", "Validate code without running it: findings, threat scores, decision.\n"
                                            "Exit 0 allow, 1 approval needed, 2 deny, 64 usage error");
    sub->add_option("file", flags->file, "File to check, or - for standard input")->required();
    sub->add_option("-l,--language", flags->language,
                    "python | bash | sh | javascript (default: from the extension or #! line)");
    sub->add_option("-p,--preset", flags->preset, "Policy preset: permissive | balanced | strict | paranoid");
    sub->add_option("--controls", flags->controls,
                    "Controls in force: runtime (ask this host's sandbox, default), all, none, or C001,C002,...");
    sub->add_flag("--json", flags->json, "Print the assessment as JSON (the assess_code contract)");
    return {sub, [flags](Context& ctx) { return run_check(ctx, *flags); }};
}

}  // namespace kiln::cli
