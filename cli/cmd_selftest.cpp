// kiln selftest: what this host really enforces, measured. Runs the live
// selftest (security/selftest.hpp: probes in real jails with the effective
// policy, the validator, the audit log, the host's swap) and prints each
// control's status with its evidence and each threat's live score. Exits 1
// when a control the active policy requires is missing.
#include <iostream>

#include "cli/cli.hpp"
#include "tools/toolbox.hpp"
#include "common/libcrypto.hpp"
#include "sandbox/image_store.hpp"
#include "sandbox/runtime.hpp"
#include "security/compliance.hpp"
#include "security/selftest.hpp"

namespace kiln::cli {
namespace {

void print_report(const security::selftest::Report& report, bool json, bool compliance) {
    namespace c = security::compliance;
    if (compliance) {
        auto table = c::assess(report);
        if (json) std::cout << c::to_json(table, report).dump(2) << "\n";
        else std::cout << c::to_table(table, report);
        return;
    }
    if (json) std::cout << security::selftest::to_json(report).dump(2) << "\n";
    else std::cout << security::selftest::to_table(report);
}

}  // namespace

Command register_selftest(CLI::App& app) {
    auto* sub = app.add_subcommand(
        "selftest",
        "Measure which controls (C001-C013) are in force on this host: probes in real jails with the active policy,\n"
        "the validator, the audit log and the host's swap; each control's evidence and each threat's live score.\n"
        "Exit status 1 when a control the policy requires is missing.");
    auto json_out = std::make_shared<bool>(false);
    auto compliance = std::make_shared<bool>(false);
    sub->add_flag("--json", *json_out, "Print the report as JSON (docs/threat-model.md, \"Selftest\")");
    sub->add_flag("--compliance", *compliance,
                  "Read the measurements against the CIS Docker Benchmark v1.6.0 (section 5) and NIST SP 800-190\n"
                  "(4.4, 4.5): pass, fail or not assessed per recommendation, with the probe that decided it\n"
                  "(docs/compliance.md)");
    return {sub, [json_out, compliance](Context& ctx) {
                auto policy = security::effective_policy(ctx.config);
                if (!policy) {
                    std::cerr << "kiln selftest: " << policy.error().what() << "\n";
                    return int(kExitConfig);
                }
                // The audit log hashes its records with libcrypto.
                if (Status st = crypto::load(); !st) {
                    std::cerr << "kiln selftest: " << st.error().what() << "\n";
                    return int(kExitFailure);
                }
                // The runtime sandbox.runtime names, as the server would start it; on
                // sandbox.image the native probes run on the image's tree (allowlist
                // checked first), so the report is about the jails the server would start.
                if (ctx.config.sandbox.runtime == RuntimeKind::Native) {
                    sandbox::SandboxSpec root;
                    if (Status st = sandbox::image::apply_configured(root, ctx.config); !st) {
                        std::cerr << "kiln selftest: " << st.error().what() << "\n";
                        return int(kExitConfig);
                    }
                    if (!root.rootfs.empty()) ctx.config.sandbox.rootfs = root.rootfs;
                }
                auto runtime = tools::make_runtime(ctx.config, *policy, {}, 0);
                if (!runtime) {
                    std::cerr << "kiln selftest: " << runtime.error().what() << "\n";
                    return int(kExitFailure);
                }
                security::selftest::Options options;
                options.config = &ctx.config;
                options.policy = &*policy;
                options.runtime = runtime->get();
                auto report = security::selftest::run(options);
                if (!report) {
                    std::cerr << "kiln selftest: " << report.error().what() << "\n";
                    return int(kExitFailure);
                }
                print_report(*report, *json_out, *compliance);
                return report->missing_required().empty() ? int(kExitOk) : int(kExitFailure);
            }};
}

}  // namespace kiln::cli
