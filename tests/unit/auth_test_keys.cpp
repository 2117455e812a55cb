#include "tests/unit/auth_test_keys.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <stdlib.h>

#include <fstream>
#include <stdexcept>

namespace kiln::test {
namespace {

void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("test key helper: ") + what);
}

std::string bn_bytes(const EVP_PKEY* key, const char* param, int pad = 0) {
    BIGNUM* bn = nullptr;
    check(EVP_PKEY_get_bn_param(key, param, &bn) == 1, param);
    std::string out(pad ? static_cast<std::size_t>(pad) : static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
    if (pad) BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), pad);
    else BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
    BN_free(bn);
    return out;
}

std::string der_to_raw_es256(const std::string& der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
    check(sig != nullptr, "d2i_ECDSA_SIG");
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(sig);
    return raw;
}

}  // namespace

TempDir::TempDir() {
    char tmpl[] = "/tmp/kiln-auth-test-XXXXXX";
    check(mkdtemp(tmpl) != nullptr, "mkdtemp");
    path = tmpl;
}

TempDir::~TempDir() { std::filesystem::remove_all(path); }

std::string TempDir::write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return file(name);
}

std::string b64url(const std::string& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(bytes.data()),
                            static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    while (!out.empty() && out.back() == '=') out.pop_back();
    for (auto& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
    return out;
}

Pkey new_rsa_key(int bits) {
    EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits));
    check(k != nullptr, "RSA keygen");
    return Pkey(k, EVP_PKEY_free);
}

Pkey new_p256_key() {
    EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    check(k != nullptr, "EC keygen");
    return Pkey(k, EVP_PKEY_free);
}

nlohmann::json rsa_jwk(const Pkey& key, const std::string& kid, const std::string& alg) {
    nlohmann::json j{{"kty", "RSA"}, {"kid", kid}, {"use", "sig"},
                     {"n", b64url(bn_bytes(key.get(), OSSL_PKEY_PARAM_RSA_N))},
                     {"e", b64url(bn_bytes(key.get(), OSSL_PKEY_PARAM_RSA_E))}};
    if (!alg.empty()) j["alg"] = alg;
    return j;
}

nlohmann::json p256_jwk(const Pkey& key, const std::string& kid) {
    return {{"kty", "EC"}, {"crv", "P-256"}, {"kid", kid}, {"alg", "ES256"},
            {"x", b64url(bn_bytes(key.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32))},
            {"y", b64url(bn_bytes(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32))}};
}

std::string public_pem(const Pkey& key) {
    BIO* bio = BIO_new(BIO_s_mem());
    check(PEM_write_bio_PUBKEY(bio, key.get()) == 1, "PEM_write_bio_PUBKEY");
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return out;
}

std::string sign_jwt(const nlohmann::json& header, const nlohmann::json& claims, const Pkey& key) {
    std::string input = b64url(header.dump()) + "." + b64url(claims.dump());
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    check(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key.get()) == 1, "DigestSignInit");
    size_t len = 0;
    check(EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1, "sign size");
    std::string sig(len, '\0');
    check(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                         reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1, "sign");
    EVP_MD_CTX_free(ctx);
    sig.resize(len);
    if (header.value("alg", "") == "ES256") sig = der_to_raw_es256(sig);
    return input + "." + b64url(sig);
}

std::string sign_hs256(const nlohmann::json& header, const nlohmann::json& claims, const std::string& secret) {
    std::string input = b64url(header.dump()) + "." + b64url(claims.dump());
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(input.data()),
         input.size(), mac, &len);
    return input + "." + b64url(std::string(reinterpret_cast<const char*>(mac), len));
}

}  // namespace kiln::test
