// kiln trust list|add|remove: manage approved code (the trust store).
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/cli.hpp"
#include "common/units.hpp"
#include "security/trust_store.hpp"

namespace kiln::cli {
namespace {

std::string format_time(std::int64_t t) {
    char buf[32];
    std::time_t tt = static_cast<std::time_t>(t);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));
    return buf;
}

Result<std::string> read_source(const std::string& file) {
    std::ostringstream text;
    if (file == "-") {
        text << std::cin.rdbuf();
    } else {
        std::ifstream in(file, std::ios::binary);
        if (!in) return sys_error("open " + file);
        text << in.rdbuf();
    }
    return text.str();
}

struct Flags {
    std::string file, hash, note, expires, remove_hash;
    unsigned uses = 0;
};

int do_list(Context& ctx) {
    security::TrustStore store(trust_store_path(ctx.config));
    auto entries = store.list();
    if (!entries) {
        std::cerr << "kiln trust list: " << entries.error().what() << "\n";
        return kExitFailure;
    }
    if (entries->empty()) std::cout << "No trusted code in " << store.path() << "\n";
    for (const auto& e : *entries) {
        std::cout << e.sha256 << "  added " << format_time(e.added);
        if (e.expires) std::cout << "  expires " << format_time(*e.expires);
        if (e.uses_left) std::cout << "  uses left " << *e.uses_left;
        if (!e.note.empty()) std::cout << "  " << e.note;
        std::cout << "\n";
    }
    return kExitOk;
}

int do_add(Context& ctx, const Flags& f) {
    security::TrustEntry entry;
    if (!f.hash.empty()) {
        entry.sha256 = f.hash;
    } else {
        auto code = read_source(f.file);
        if (!code) {
            std::cerr << "kiln trust add: " << code.error().what() << "\n";
            return kExitUsage;
        }
        entry.sha256 = security::code_fingerprint(*code);
    }
    entry.note = f.note;
    if (!f.expires.empty()) {
        auto d = parse_duration(f.expires);
        if (!d) {
            std::cerr << "kiln trust add: --expires: " << d.error().message << "\n";
            return kExitUsage;
        }
        entry.expires = std::time(nullptr) + d->count() / 1000;
    }
    if (f.uses > 0) entry.uses_left = f.uses;
    security::TrustStore store(trust_store_path(ctx.config));
    if (Status st = store.add(entry); !st) {
        std::cerr << "kiln trust add: " << st.error().what() << "\n";
        return kExitFailure;
    }
    std::cout << "trusted " << entry.sha256 << " (" << store.path() << ")\n";
    return kExitOk;
}

int do_remove(Context& ctx, const Flags& f) {
    security::TrustStore store(trust_store_path(ctx.config));
    auto removed = store.remove(f.remove_hash);
    if (!removed) {
        std::cerr << "kiln trust remove: " << removed.error().what() << "\n";
        return kExitUsage;
    }
    if (!*removed) {
        std::cerr << "kiln trust remove: no entry starts with " << f.remove_hash << " (see 'kiln trust list')\n";
        return kExitFailure;
    }
    std::cout << "removed\n";
    return kExitOk;
}

}  // namespace

Command register_trust(CLI::App& app) {
    auto* sub = app.add_subcommand(
        "trust", "Manage approved code: code whose SHA-256 is trusted runs without asking for approval");
    sub->require_subcommand(1);
    auto f = std::make_shared<Flags>();
    auto* list = sub->add_subcommand("list", "List trusted code hashes");
    auto* add = sub->add_subcommand("add", "Trust the code in FILE (or - for stdin), or a hash given with --sha256");
    auto* file_opt = add->add_option("file", f->file, "file holding the exact code to trust, or -");
    auto* hash_opt = add->add_option("--sha256", f->hash, "hash as printed by a denied call or the audit log");
    file_opt->excludes(hash_opt);
    add->add_option("--note", f->note, "why it is trusted");
    add->add_option("--expires", f->expires, "trust for this long only, e.g. 24h");
    add->add_option("--uses", f->uses, "trust for this many runs only");
    auto* rm = sub->add_subcommand("remove", "Forget a trusted hash (a unique prefix of 8+ digits is enough)");
    rm->add_option("sha256", f->remove_hash, "hash or prefix")->required();
    return {sub, [=](Context& ctx) {
                if (list->parsed()) return do_list(ctx);
                if (add->parsed()) {
                    if (f->file.empty() && f->hash.empty()) {
                        std::cerr << "kiln trust add: give a FILE (or -) or --sha256 HASH\n";
                        return int(kExitUsage);
                    }
                    return do_add(ctx, *f);
                }
                return do_remove(ctx, *f);
            }};
}

}  // namespace kiln::cli
