#include "security/audit/seal.hpp"

#include <memory>

#include "common/libcrypto.hpp"
#include "common/text.hpp"

namespace kiln::audit {
namespace {

constexpr int kIvBytes = 12;   // the GCM standard nonce size
constexpr int kTagBytes = 16;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&::EVP_CIPHER_CTX_free)>;

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

Error crypto_error(const std::string& step) {
    return make_error(step, "OpenSSL AES-256-GCM failure (is the key 32 bytes?)");
}

}  // namespace

std::string seal_aad(std::uint64_t seq) { return "kiln-audit:" + std::to_string(seq); }

Result<nlohmann::json> seal(std::string_view key, std::string_view plaintext, std::string_view aad) {
    if (key.size() != 32) return make_error("seal code", "the seal key must be 32 bytes");
    if (Status st = crypto::load(); !st) return st.error().wrap("seal code");
    const crypto::LibCrypto& c = crypto::lib();
    std::string iv(kIvBytes, '\0');
    if (c.RAND_bytes(bytes(iv), kIvBytes) != 1) return crypto_error("seal code: random IV");
    CipherCtx ctx(c.EVP_CIPHER_CTX_new(), c.EVP_CIPHER_CTX_free);
    std::string ct(plaintext.size() + 16, '\0');
    std::string tag(kTagBytes, '\0');
    int len = 0, total = 0;
    if (!ctx || c.EVP_EncryptInit_ex(ctx.get(), c.EVP_aes_256_gcm(), nullptr, bytes(key), bytes(iv)) != 1 ||
        c.EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) != 1 ||
        c.EVP_EncryptUpdate(ctx.get(), bytes(ct), &len, bytes(plaintext), static_cast<int>(plaintext.size())) != 1)
        return crypto_error("seal code");
    total = len;
    if (c.EVP_EncryptFinal_ex(ctx.get(), bytes(ct) + total, &len) != 1 ||
        c.EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, tag.data()) != 1)
        return crypto_error("seal code: final");
    ct.resize(static_cast<std::size_t>(total + len));
    return nlohmann::json{{"alg", "AES-256-GCM"}, {"iv", base64_encode(iv)}, {"ct", base64_encode(ct)},
                          {"tag", base64_encode(tag)}};
}

Result<std::string> unseal(std::string_view key, const nlohmann::json& sealed, std::string_view aad) {
    if (key.size() != 32) return make_error("unseal code", "the seal key must be 32 bytes");
    if (!sealed.is_object() || sealed.value("alg", "") != "AES-256-GCM")
        return make_error("unseal code", "code_sealed is not an AES-256-GCM object");
    auto iv = base64_decode(sealed.value("iv", ""));
    auto ct = base64_decode(sealed.value("ct", ""));
    auto tag = base64_decode(sealed.value("tag", ""));
    if (!iv || !ct || !tag || iv->size() != kIvBytes || tag->size() != kTagBytes)
        return make_error("unseal code", "code_sealed has a malformed iv, ct or tag");
    if (Status st = crypto::load(); !st) return st.error().wrap("unseal code");
    const crypto::LibCrypto& c = crypto::lib();
    CipherCtx ctx(c.EVP_CIPHER_CTX_new(), c.EVP_CIPHER_CTX_free);
    std::string pt(ct->size() + 16, '\0');
    int len = 0, total = 0;
    if (!ctx || c.EVP_DecryptInit_ex(ctx.get(), c.EVP_aes_256_gcm(), nullptr, bytes(key), bytes(*iv)) != 1 ||
        c.EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) != 1 ||
        c.EVP_DecryptUpdate(ctx.get(), bytes(pt), &len, bytes(*ct), static_cast<int>(ct->size())) != 1)
        return crypto_error("unseal code");
    total = len;
    if (c.EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag->data()) != 1 ||
        c.EVP_DecryptFinal_ex(ctx.get(), bytes(pt) + total, &len) != 1)
        return make_error("unseal code", "authentication failed: wrong seal key, or the sealed code or its seq was altered");
    pt.resize(static_cast<std::size_t>(total + len));
    return pt;
}

}  // namespace kiln::audit
