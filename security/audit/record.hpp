// The hash chain's definitions, shared by the writer and the verifier so the
// two can never disagree about what a record's bytes are.
//
// canonical(record) = the record without `hash` and `hmac`, serialised by
// nlohmann::json::dump() with no whitespace; objects are std::map so keys
// are sorted, and invalid UTF-8 is replaced by U+FFFD before hashing.
// hash = hex(SHA-256(prev_hash_hex || canonical)), hmac = hex(HMAC-SHA-256(
// key, hash)). The line on disk is dump() of the full record, which makes
// the file byte-for-byte reproducible from the parsed record: the verifier
// rejects any line that is not in that form, so duplicate keys or extra
// spaces cannot hide an edit from a reader that parses differently.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace kiln::audit {

// prev_hash of the first record of a chain: 64 zeros.
extern const std::string kGenesisHash;

std::string dump_record(const nlohmann::json& record);
std::string canonical_bytes(nlohmann::json record);
std::string chain_hash(std::string_view prev_hash, std::string_view canonical);
std::string hmac_hex(std::string_view key, std::string_view hash);
// "2026-11-23T08:51:17.123456Z".
std::string format_rfc3339_us(std::chrono::system_clock::time_point t);
// Accepts the above, without fraction, a date only ("2026-11-23") or a
// relative age such as "15m" / "2h" / "7d" meaning that long before now.
std::optional<std::chrono::system_clock::time_point> parse_time(std::string_view text);
// "<seq>-<first 12 hex of hash>".
std::string record_id(std::uint64_t seq, std::string_view hash);

// Key files: the HMAC key is the file's bytes with trailing whitespace cut
// (at least 16 bytes; `openssl rand -hex 32 > key`). The seal key is 32 raw
// bytes or 64 hex digits. Both must not be readable by group or others.
Result<std::string> load_hmac_key(const std::string& path);
Result<std::string> load_seal_key(const std::string& path);

}  // namespace kiln::audit
