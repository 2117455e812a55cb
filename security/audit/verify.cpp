#include "security/audit/verify.hpp"

#include <nlohmann/json.hpp>

#include "security/audit/files.hpp"
#include "security/audit/record.hpp"

namespace kiln::audit {
namespace {

class Verifier {
public:
    Verifier(const VerifyOptions& options, VerifyResult& result) : options_(options), r_(result) {
        r_.hmac_checked = !options.hmac_key.empty();
    }

    // False stops the walk: the first break is the one worth reporting,
    // everything after it is unanchored.
    bool check(const LogLine& line) {
        r_.file = *line.file;
        r_.line = line.line_no;
        r_.seq = 0;
        if (line.torn)
            return fail("the line is cut short (no newline): a write was interrupted by a crash or the file was "
                        "truncated; restarting kiln on this log cuts it and records a recovery event");
        auto record = nlohmann::json::parse(line.text, nullptr, false);
        if (record.is_discarded() || !record.is_object()) return fail("not a JSON object");
        if (!record["seq"].is_number_unsigned() || !record["prev_hash"].is_string() || !record["hash"].is_string())
            return fail("seq, prev_hash or hash is missing");
        r_.seq = record["seq"].get<std::uint64_t>();
        if (dump_record(record) != line.text)
            return fail("the line is not in canonical form (spacing, key order, escapes or duplicate keys were "
                        "edited)");
        if (!check_link(record)) return false;
        std::string hash = record["hash"].get<std::string>();
        if (chain_hash(record["prev_hash"].get<std::string>(), canonical_bytes(record)) != hash)
            return fail("hash mismatch: the record's content was changed after it was written");
        if (!check_hmac(record, hash)) return false;
        prev_hash_ = hash;
        prev_seq_ = r_.seq;
        if (r_.records++ == 0) r_.first_seq = r_.seq;
        r_.last_seq = r_.seq;
        r_.last_hash = hash;
        return true;
    }

private:
    bool check_link(const nlohmann::json& record) {
        const std::string prev = record["prev_hash"].get<std::string>();
        if (r_.records == 0) {
            if (r_.seq == 1) {
                if (prev != kGenesisHash) return fail("the first record (seq 1) must have prev_hash of 64 zeros");
                return true;
            }
            if (!options_.allow_partial)
                return fail("the chain starts at seq " + std::to_string(r_.seq) +
                            ", not 1: earlier records or rotated files are missing; pass them too, or --partial to "
                            "verify from here");
            r_.notes.push_back("chain starts at seq " + std::to_string(r_.seq) + " in " + r_.file +
                               "; its prev_hash " + prev.substr(0, 12) + "... is taken on trust");
            return true;
        }
        if (r_.seq != prev_seq_ + 1)
            return fail("seq " + std::to_string(r_.seq) + " follows seq " + std::to_string(prev_seq_) +
                        ": a record was deleted, inserted or reordered");
        if (prev != prev_hash_)
            return fail("prev_hash does not match the hash of seq " + std::to_string(prev_seq_) +
                        ": a record was replaced, inserted or reordered");
        return true;
    }

    bool check_hmac(const nlohmann::json& record, const std::string& hash) {
        auto it = record.find("hmac");
        if (options_.hmac_key.empty()) {
            if (it != record.end() && !hmac_noted_) {
                r_.notes.push_back("records carry an HMAC that was not checked: pass --hmac-key-file to check it");
                hmac_noted_ = true;
            }
            return true;
        }
        if (it == record.end() || !it->is_string())
            return fail("no hmac although an HMAC key was given: the record was forged or written without the key");
        if (it->get<std::string>() != hmac_hex(options_.hmac_key, hash))
            return fail("HMAC mismatch: the record was forged or rewritten by someone without the key (or the key "
                        "is not the one the log was written with)");
        return true;
    }

    bool fail(std::string problem) {
        r_.intact = false;
        r_.problem = std::move(problem);
        return false;
    }

    const VerifyOptions& options_;
    VerifyResult& r_;
    std::string prev_hash_;
    std::uint64_t prev_seq_ = 0;
    bool hmac_noted_ = false;
};

}  // namespace

Result<VerifyResult> verify_chain(const std::vector<std::string>& files, const VerifyOptions& options) {
    if (files.empty()) return make_error("verify audit log", "no audit log files to verify");
    VerifyResult result;
    Verifier verifier(options, result);
    if (Status st = for_each_line(files, [&](const LogLine& line) { return verifier.check(line); }); !st)
        return std::move(st).error();
    if (result.intact) {
        result.file.clear();
        result.line = result.seq = 0;
    }
    return result;
}

}  // namespace kiln::audit
