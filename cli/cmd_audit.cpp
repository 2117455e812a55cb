// kiln audit verify|merge|show|stats|unseal: review the audit log (C011). The
// work is in security/audit/; this file parses flags and prints.
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/cli.hpp"
#include "security/audit/files.hpp"
#include "security/audit/query.hpp"
#include "security/audit/record.hpp"
#include "security/audit/seal.hpp"
#include "security/audit/verify.hpp"

namespace kiln::cli {
namespace {

struct Flags {
    std::vector<std::string> files;
    std::string hmac_key_file, seal_key_file;
    bool partial = false;
    bool json = false;
    std::string since, until;
    audit::Filter filter;
    std::size_t limit = 0;
};

// FILES given, or the configured log and its rotated predecessors.
std::vector<std::string> log_files(const Context& ctx, const Flags& f) {
    if (!f.files.empty()) return f.files;
    auto files = audit::chain_files(ctx.config.audit.path);
    if (files.empty())
        std::cerr << "kiln audit: no audit log at " << ctx.config.audit.path
                  << " (set audit.path, --set audit.path=PATH, or pass FILES)\n";
    return files;
}

Result<audit::VerifyOptions> verify_options(const Context& ctx, const Flags& f) {
    audit::VerifyOptions options;
    options.allow_partial = f.partial;
    std::string key_file = f.hmac_key_file.empty() ? ctx.config.audit.hmac_key_file : f.hmac_key_file;
    if (!key_file.empty()) {
        auto key = audit::load_hmac_key(key_file);
        if (!key) return Error(key.error()).wrap("--hmac-key-file");
        options.hmac_key = *key;
    }
    return options;
}

// Verifies one chain and prints the verdict, each line after `prefix`
// (the chain's name when there are several). False: broken or unreadable.
bool verify_and_print(const std::vector<std::string>& files, const audit::VerifyOptions& options,
                      const std::string& prefix) {
    auto r = audit::verify_chain(files, options);
    if (!r) {
        std::cerr << "kiln audit verify: " << r.error().what() << "\n";
        return false;
    }
    for (const auto& note : r->notes) std::cout << prefix << "note: " << note << "\n";
    if (!r->intact) {
        std::cout << prefix << "BROKEN at " << r->file << ":" << r->line;
        if (r->seq) std::cout << " (seq " << r->seq << ")";
        std::cout << ": " << r->problem << "\n"
                  << prefix << r->records << " records before it verified"
                  << (r->records ? " (seq " + std::to_string(r->first_seq) + ".." + std::to_string(r->last_seq) + ")" : "")
                  << "\n";
        return false;
    }
    std::cout << prefix << "OK: " << r->records << " records";
    if (r->records) std::cout << " (seq " << r->first_seq << ".." << r->last_seq << ")";
    std::cout << " in " << files.size() << (files.size() == 1 ? " file" : " files") << ", hash chain intact"
              << (r->hmac_checked ? ", HMAC verified" : ", HMAC not checked") << "\n";
    if (r->records) std::cout << prefix << "head: " << audit::record_id(r->last_seq, r->last_hash) << " " << r->last_hash << "\n";
    return true;
}

// Every chain among FILES (one per replica, docs/audit.md), each verified
// on its own; all must be intact.
bool verify_chains(const std::vector<std::vector<std::string>>& chains, const audit::VerifyOptions& options) {
    bool all = true;
    for (const auto& chain : chains)
        all = verify_and_print(chain, options, chains.size() == 1 ? "" : chain.back() + ": ") && all;
    if (chains.size() > 1) std::cout << (all ? "OK: " : "BROKEN: ") << chains.size() << " chains\n";
    return all;
}

int do_verify(const Context& ctx, const Flags& f) {
    auto files = log_files(ctx, f);
    if (files.empty()) return kExitFailure;
    auto options = verify_options(ctx, f);
    if (!options) {
        std::cerr << "kiln audit verify: " << options.error().what() << "\n";
        return kExitConfig;
    }
    return verify_chains(audit::group_chains(files), *options) ? kExitOk : kExitFailure;
}

// Several replicas' chains as one log in time order. Each chain is
// verified first: a merged view of a broken chain would hide the break.
int do_merge(const Context& ctx, const Flags& f) {
    auto options = verify_options(ctx, f);
    if (!options) {
        std::cerr << "kiln audit merge: " << options.error().what() << "\n";
        return kExitConfig;
    }
    auto chains = audit::group_chains(f.files);
    std::ostringstream report;
    auto* saved = std::cout.rdbuf(report.rdbuf());
    bool intact = verify_chains(chains, *options);
    std::cout.rdbuf(saved);
    std::cerr << report.str();
    if (!intact) {
        std::cerr << "kiln audit merge: not merged: a chain does not verify (above)\n";
        return kExitFailure;
    }
    auto merged = audit::merge_chains(chains);
    if (!merged) {
        std::cerr << "kiln audit merge: " << merged.error().what() << "\n";
        return kExitFailure;
    }
    for (const auto& r : *merged) std::cout << r.text << "\n";
    return kExitOk;
}

// Calls fn(record, line) for each record passing the filter. Lines that are
// not records (a torn tail while the server writes) are skipped with a note.
Status each_record(const std::vector<std::string>& files, const audit::Filter& filter,
                   const std::function<void(const nlohmann::json&, const std::string&)>& fn) {
    return audit::for_each_line(files, [&](const audit::LogLine& line) {
        auto record = nlohmann::json::parse(line.text, nullptr, false);
        if (line.torn || !record.is_object()) {
            std::cerr << "note: " << *line.file << ":" << line.line_no << " is not a complete record; skipped "
                      << "(check the chain with 'kiln audit verify')\n";
            return true;
        }
        if (filter.matches(record)) fn(record, line.text);
        return true;
    });
}

std::string cell(std::string text, std::size_t width) {
    if (text.size() > width) text = text.substr(0, width - 1) + "~";
    return text + std::string(width - text.size() + 1, ' ');
}

void print_row(const audit::Summary& s) {
    std::string when = s.ts.size() >= 19 ? s.ts.substr(0, 10) + " " + s.ts.substr(11, 8) : s.ts;
    std::cout << cell(when, 19) << cell(s.event, 13) << cell(s.session, 12) << cell(s.tool, 12)
              << cell(s.decision, 14) << cell(s.risk, 8) << cell(s.exit, 8) << cell(s.duration, 9)
              << cell(s.id, 20) << s.finding << "\n";
}

int do_show(const Context& ctx, const Flags& f) {
    auto files = log_files(ctx, f);
    if (files.empty()) return kExitFailure;
    std::vector<std::string> out;  // kept only when --limit asks for the last N
    bool header = false;
    auto emit = [&](const nlohmann::json& record, const std::string& text) {
        if (f.json) {
            std::cout << text << "\n";
            return;
        }
        if (!header) {
            print_row({"TIME (UTC)", "EVENT", "SESSION", "TOOL", "DECISION", "RISK", "EXIT", "DURATION", "FINDING", "AUDIT ID"});
            header = true;
        }
        print_row(audit::summarize(record));
    };
    std::vector<std::pair<nlohmann::json, std::string>> tail;
    Status st = each_record(files, f.filter, [&](const nlohmann::json& record, const std::string& text) {
        if (f.limit == 0) return emit(record, text);
        tail.emplace_back(record, text);
        if (tail.size() > f.limit) tail.erase(tail.begin());
    });
    for (const auto& [record, text] : tail) emit(record, text);
    if (!st) {
        std::cerr << "kiln audit show: " << st.error().what() << "\n";
        return kExitFailure;
    }
    if (!header && !f.json) std::cerr << "no records match\n";
    return kExitOk;
}

int do_stats(const Context& ctx, const Flags& f) {
    auto files = log_files(ctx, f);
    if (files.empty()) return kExitFailure;
    audit::Stats stats;
    Status st = each_record(files, f.filter, [&](const nlohmann::json& record, const std::string&) { stats.add(record); });
    if (!st) {
        std::cerr << "kiln audit stats: " << st.error().what() << "\n";
        return kExitFailure;
    }
    std::cout << (f.json ? stats.to_json().dump(2) + "\n" : stats.to_text());
    return kExitOk;
}

int do_unseal(const Context& ctx, const Flags& f) {
    auto files = log_files(ctx, f);
    if (files.empty()) return kExitFailure;
    std::string key_file = f.seal_key_file.empty() ? ctx.config.audit.seal_key_file : f.seal_key_file;
    if (key_file.empty()) {
        std::cerr << "kiln audit unseal: give --seal-key-file (or set audit.seal_key_file)\n";
        return kExitUsage;
    }
    auto key = audit::load_seal_key(key_file);
    if (!key) {
        std::cerr << "kiln audit unseal: --seal-key-file: " << key.error().what() << "\n";
        return kExitConfig;
    }
    int failures = 0, shown = 0;
    Status st = each_record(files, f.filter, [&](const nlohmann::json& record, const std::string&) {
        if (!record.contains("code_sealed")) return;
        auto seq = record["seq"].get<std::uint64_t>();
        auto code = audit::unseal(*key, record["code_sealed"], audit::seal_aad(seq));
        std::cout << "=== " << audit::record_id(seq, record.value("hash", "")) << " " << record.value("ts", "") << "\n";
        if (code) {
            std::cout << *code << (code->empty() || code->back() != '\n' ? "\n" : "");
            ++shown;
        } else {
            std::cout << "(cannot unseal: " << code.error().message << ")\n";
            ++failures;
        }
    });
    if (!st) {
        std::cerr << "kiln audit unseal: " << st.error().what() << "\n";
        return kExitFailure;
    }
    if (shown + failures == 0) std::cerr << "no sealed records match\n";
    return failures ? kExitFailure : kExitOk;
}

void add_filter_flags(CLI::App* app, Flags& f) {
    app->add_option("--since", f.since, "only records at or after T: RFC 3339, a date, or an age such as 2h or 7d");
    app->add_option("--until", f.until, "only records at or before T (same forms as --since)");
    app->add_option("--session", f.filter.session, "only this MCP session id");
    app->add_option("--tool", f.filter.tool, "only this tool, e.g. run_code");
    app->add_option("--decision", f.filter.decision, "only this decision: allow, deny, ask, approved, denied");
    app->add_option("--threat", f.filter.threat, "only records raising this threat, e.g. T003");
    app->add_option("--min-risk", f.filter.min_risk, "only records at or above this risk level")
        ->check(CLI::IsMember({"none", "low", "medium", "high", "critical"}));
    app->add_option("--event", f.filter.event, "only this event: tool_call, decision, execution, error, session, server, recovery");
    app->add_option("--id", f.filter.id, "only the record with this audit_id and those whose call_id is it");
    app->add_option("files", f.files, "log files in chain order (default: audit.path and its rotated predecessors)");
}

int parse_times(Flags& f) {
    for (auto [text, slot, flag] : {std::tuple{&f.since, &f.filter.since, "--since"}, std::tuple{&f.until, &f.filter.until, "--until"}}) {
        if (text->empty()) continue;
        *slot = audit::parse_time(*text);
        if (!*slot) {
            std::cerr << "kiln audit: " << flag << " " << *text
                      << ": expected 2026-11-23T08:51:17Z, 2026-11-23, or an age such as 30m, 2h, 7d\n";
            return kExitUsage;
        }
    }
    return kExitOk;
}

}  // namespace

Command register_audit(CLI::App& app) {
    auto* sub = app.add_subcommand("audit", "Review the tamper-evident audit log: verify its chain, show and count records");
    sub->require_subcommand(1);
    auto f = std::make_shared<Flags>();

    auto* verify = sub->add_subcommand("verify", "Check the hash chain (and HMAC); print the first broken record. Exit 0 intact, 1 broken");
    verify->add_option("--hmac-key-file", f->hmac_key_file, "HMAC key the log was written with (default: audit.hmac_key_file)");
    verify->add_flag("--partial", f->partial, "accept a chain that does not start at seq 1 (older files removed)");
    verify->add_option("files", f->files, "log files (default: audit.path and its rotated predecessors); files of several replicas' chains are verified chain by chain");

    auto* merge = sub->add_subcommand("merge", "Verify several replicas' chains, then print all their records in time order (JSON Lines)");
    merge->add_option("--hmac-key-file", f->hmac_key_file, "HMAC key the logs were written with (default: audit.hmac_key_file)");
    merge->add_flag("--partial", f->partial, "accept chains that do not start at seq 1 (older files removed)");
    merge->add_option("files", f->files, "every chain's files; rotated files (path.N) join path's chain")->required();

    auto* show = sub->add_subcommand("show", "Print records as a table, or as JSON Lines for jq");
    add_filter_flags(show, *f);
    show->add_flag("--json", f->json, "print matching records as JSON Lines, exactly as stored");
    show->add_option("-n,--limit", f->limit, "only the last N matching records");

    auto* stats = sub->add_subcommand("stats", "Count records by event, decision, threat, tool and outcome; latency percentiles");
    add_filter_flags(stats, *f);
    stats->add_flag("--json", f->json, "print the statistics as JSON");

    auto* unseal = sub->add_subcommand("unseal", "Print the sealed code of matching records (needs the seal key)");
    add_filter_flags(unseal, *f);
    unseal->add_option("--seal-key-file", f->seal_key_file, "AES-256-GCM key (default: audit.seal_key_file)");

    return {sub, [=](Context& ctx) {
                if (int rc = parse_times(*f); rc != kExitOk) return rc;
                if (verify->parsed()) return do_verify(ctx, *f);
                if (merge->parsed()) return do_merge(ctx, *f);
                if (show->parsed()) return do_show(ctx, *f);
                if (stats->parsed()) return do_stats(ctx, *f);
                return do_unseal(ctx, *f);
            }};
}

}  // namespace kiln::cli
