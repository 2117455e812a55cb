// Keys and tokens for the auth tests, made with OpenSSL's own EVP calls
// (linked directly here: the code under test goes through the libcrypto
// Kiln loads on first use, the test's signer does not).
#pragma once

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <filesystem>
#include <memory>
#include <string>

namespace kiln::test {

using Pkey = std::shared_ptr<EVP_PKEY>;

Pkey new_rsa_key(int bits = 2048);
Pkey new_p256_key();

// The public half as a JWK with this kid (and "alg" when not empty).
nlohmann::json rsa_jwk(const Pkey& key, const std::string& kid, const std::string& alg = "RS256");
nlohmann::json p256_jwk(const Pkey& key, const std::string& kid);
// The public key as PEM text.
std::string public_pem(const Pkey& key);

// header.payload.signature with the header and claims as given; the
// signature is RS256 or ES256 per header["alg"], made with `key`.
std::string sign_jwt(const nlohmann::json& header, const nlohmann::json& claims, const Pkey& key);
// HS256 with `secret` as the HMAC key.
std::string sign_hs256(const nlohmann::json& header, const nlohmann::json& claims, const std::string& secret);

std::string b64url(const std::string& bytes);

// A directory under /tmp, removed with everything in it.
struct TempDir {
    std::filesystem::path path;
    TempDir();
    ~TempDir();
    std::string file(const std::string& name) const { return (path / name).string(); }
    // Writes `text` to `name` and returns its path.
    std::string write(const std::string& name, const std::string& text) const;
};

}  // namespace kiln::test
