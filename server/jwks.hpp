// The authorization server's signing keys, from a JWKS file (RFC 7517)
// named by server.auth.jwks_file.
//
// Only the keys Kiln can verify with are kept: RSA keys of 2048 bits or
// more for RS256, and P-256 keys for ES256. Keys for other algorithms,
// encryption keys ("use": "enc") and symmetric keys are skipped, so a real
// authorization server's JWKS can be used as it is; a file with no usable
// key is an error. The keys are built with OpenSSL's EVP_PKEY_fromdata from
// the JWK's fields, through the libcrypto loaded on first use.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/evp.h>

#include "common/result.hpp"

namespace kiln::auth {

enum class JwsAlgorithm { RS256, ES256 };

struct Jwk {
    std::string kid;  // empty when the JWK has none
    JwsAlgorithm alg = JwsAlgorithm::RS256;
    std::shared_ptr<EVP_PKEY> key;
};

class Jwks {
public:
    // `origin` names the text in errors ("jwks.json"); each error names the
    // key by its index and the field.
    static Result<Jwks> parse(std::string_view json, const std::string& origin);
    static Result<Jwks> load(const std::string& path);

    // The key a token's header selects: the one with its kid and algorithm;
    // without a kid, the only key of that algorithm (nullptr if several).
    const Jwk* select(const std::optional<std::string>& kid, JwsAlgorithm alg) const;
    std::size_t size() const { return keys_.size(); }
    // Keys the file held that cannot verify RS256 or ES256 tokens.
    std::size_t skipped() const { return skipped_; }

private:
    std::vector<Jwk> keys_;
    std::size_t skipped_ = 0;
};

}  // namespace kiln::auth
