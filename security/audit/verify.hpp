// Checks a chain of audit log files: every line canonical JSON, seq
// consecutive, prev_hash equal to the previous record's hash, hash
// recomputed, HMAC recomputed when a key is given. Stops at the first
// broken record and says where it is and what the break means.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace kiln::audit {

struct VerifyOptions {
    std::string hmac_key;        // empty: hashes only
    bool allow_partial = false;  // accept a chain that does not start at seq 1
};

struct VerifyResult {
    bool intact = true;
    std::uint64_t records = 0;
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;
    std::string last_hash;
    bool hmac_checked = false;
    // The first broken record, when !intact.
    std::string file;
    std::uint64_t line = 0;
    std::uint64_t seq = 0;  // 0 when the line has no readable seq
    std::string problem;
    std::vector<std::string> notes;
};

// An Error only when a file cannot be read; a broken chain is a result.
Result<VerifyResult> verify_chain(const std::vector<std::string>& files, const VerifyOptions& options);

}  // namespace kiln::audit
