// AES-256-GCM sealing of the code kept in audit records (C013): the log
// stays reviewable (hashes, decisions, findings) while the code itself is
// readable only with the operator's key (`kiln audit unseal`).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "common/result.hpp"

namespace kiln::audit {

// {"alg":"AES-256-GCM","iv":b64,"ct":b64,"tag":b64}. `aad` binds the
// ciphertext to its record (the writer passes "kiln-audit:<seq>") so a
// sealed blob cannot be moved to another record unnoticed.
Result<nlohmann::json> seal(std::string_view key, std::string_view plaintext, std::string_view aad);
Result<std::string> unseal(std::string_view key, const nlohmann::json& sealed, std::string_view aad);
std::string seal_aad(std::uint64_t seq);

}  // namespace kiln::audit
