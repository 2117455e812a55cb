// The trust store: code an operator or a user approved ("approve and
// remember"), by the SHA-256 of its normalized text, so the same code runs
// without asking again. One JSON file under the state dir, mode 0600,
// replaced atomically (write a temporary file, fsync, rename) under an
// flock so the CLI and a running server never lose each other's updates.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace kiln::security {

struct TrustEntry {
    std::string sha256;
    std::string note;
    std::int64_t added = 0;                  // unix seconds
    std::optional<std::int64_t> expires;     // unix seconds
    std::optional<std::uint32_t> uses_left;  // none: unlimited
};

// Line endings unified, trailing whitespace and trailing blank lines dropped:
// an approval survives an editor's cosmetic changes, nothing more.
std::string normalize_code(std::string_view code);
std::string code_fingerprint(std::string_view code);  // sha256 of normalized code

class TrustStore {
public:
    explicit TrustStore(std::string path);

    Result<std::vector<TrustEntry>> list() const;
    Status add(const TrustEntry& entry);      // replaces an entry with the same hash
    Result<bool> remove(const std::string& sha256_or_prefix);
    // True when the code is trusted now; consumes one use when counted and
    // drops entries that expired or ran out.
    Result<bool> consume(const std::string& sha256);

    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace kiln::security
