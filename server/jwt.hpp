// OAuth 2.1 access tokens as JWTs (RFC 7519, RFC 9068), checked the way a
// resource server must (OAuth 2.1 section 5.2, RFC 8707, RFC 8725).
//
// Only RS256 and ES256 signatures are accepted, verified with OpenSSL's
// EVP_DigestVerify against a key of the JWKS: "alg": "none", HS256 (a
// public key used as an HMAC secret) and every other algorithm are refused
// before any key is looked at. The signature is checked before any claim
// is read, then iss, aud, exp and nbf.
//
// No JWT library: libjwt and cpp-jwt link libcrypto when the program
// starts, which every `kiln run` would pay for (common/libcrypto.hpp).
#pragma once

#include <chrono>
#include <set>
#include <string>
#include <string_view>
#include <variant>

#include "server/auth_reason.hpp"
#include "server/jwks.hpp"

namespace kiln::auth {

struct JwtRequirements {
    std::string issuer;    // "iss" must equal it
    std::string audience;  // "aud" (a string or an array) must hold it
    std::chrono::seconds clock_skew{60};
};

struct JwtClaims {
    std::string subject;          // "sub"
    std::set<std::string> scopes; // "scope" (space-separated) and "scp" (an array)
};

// Tokens larger than this are refused unread.
inline constexpr std::size_t kMaxJwtBytes = 16 * 1024;

std::variant<JwtClaims, AuthReason> verify_jwt(std::string_view token, const Jwks& keys, const JwtRequirements& want,
                                                std::chrono::system_clock::time_point now);

}  // namespace kiln::auth
