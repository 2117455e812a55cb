#include "server/jwks.hpp"

#include <nlohmann/json.hpp>
#include <openssl/core_names.h>

#include <sstream>

#include "common/libcrypto.hpp"
#include "common/text.hpp"

namespace kiln::auth {
namespace {

using nlohmann::json;
using crypto::LibCrypto;

constexpr int kMinRsaBits = 2048;
constexpr std::size_t kP256CoordinateBytes = 32;

using ParamBldPtr = crypto::Owned<OSSL_PARAM_BLD, &LibCrypto::OSSL_PARAM_BLD_free>;
using ParamPtr = crypto::Owned<OSSL_PARAM, &LibCrypto::OSSL_PARAM_free>;
using BnPtr = crypto::Owned<BIGNUM, &LibCrypto::BN_free>;
using PkeyCtxPtr = crypto::Owned<EVP_PKEY_CTX, &LibCrypto::EVP_PKEY_CTX_free>;

struct KeyContext {
    const std::string& origin;
    std::size_t index;

    Error error(const std::string& field, const std::string& message) const {
        return make_error("JWKS " + origin, "keys[" + std::to_string(index) + "]" + (field.empty() ? "" : "." + field) + ": " + message);
    }
};

Result<std::string> b64url_field(const json& jwk, const char* field, const KeyContext& at) {
    auto it = jwk.find(field);
    if (it == jwk.end() || !it->is_string()) return at.error(field, "missing (a base64url string)");
    auto bytes = base64url_decode(it->get<std::string>());
    if (!bytes || bytes->empty()) return at.error(field, "not base64url without padding");
    return *bytes;
}

// A public key of `type` ("RSA", "EC") from the parameters in `bld`.
Result<std::shared_ptr<EVP_PKEY>> key_from_params(const char* type, OSSL_PARAM_BLD* bld, const KeyContext& at) {
    const LibCrypto& c = crypto::lib();
    ParamPtr params(c.OSSL_PARAM_BLD_to_param(bld));
    PkeyCtxPtr ctx(c.EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || c.EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        c.EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
        return at.error("", std::string("OpenSSL refused the ") + type + " key: " + crypto::last_error());
    return std::shared_ptr<EVP_PKEY>(raw, crypto::Freer<&LibCrypto::EVP_PKEY_free>());
}

Result<std::shared_ptr<EVP_PKEY>> rsa_key(const json& jwk, const KeyContext& at) {
    auto n = b64url_field(jwk, "n", at);
    if (!n) return n.error();
    auto e = b64url_field(jwk, "e", at);
    if (!e) return e.error();
    const LibCrypto& c = crypto::lib();
    auto bn = [&](const std::string& bytes) {
        return BnPtr(c.BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()), nullptr));
    };
    BnPtr bn_n = bn(*n), bn_e = bn(*e);
    ParamBldPtr bld(c.OSSL_PARAM_BLD_new());
    if (!bn_n || !bn_e || !bld || c.OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
        c.OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1)
        return at.error("", "cannot build the RSA parameters: " + crypto::last_error());
    auto key = key_from_params("RSA", bld.get(), at);
    if (!key) return key;
    int bits = c.EVP_PKEY_get_bits(key->get());
    if (bits < kMinRsaBits)
        return at.error("n", "a " + std::to_string(bits) + "-bit RSA key; RS256 keys must have at least " + std::to_string(kMinRsaBits) + " bits");
    return key;
}

Result<std::shared_ptr<EVP_PKEY>> p256_key(const json& jwk, const KeyContext& at) {
    auto x = b64url_field(jwk, "x", at);
    if (!x) return x.error();
    auto y = b64url_field(jwk, "y", at);
    if (!y) return y.error();
    if (x->size() != kP256CoordinateBytes) return at.error("x", "a P-256 coordinate is 32 bytes");
    if (y->size() != kP256CoordinateBytes) return at.error("y", "a P-256 coordinate is 32 bytes");
    // The uncompressed point encoding (SEC 1): 0x04, x, y. OpenSSL checks
    // that it lies on the curve.
    std::string point = "\x04" + *x + *y;
    const LibCrypto& c = crypto::lib();
    ParamBldPtr bld(c.OSSL_PARAM_BLD_new());
    if (!bld || c.OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
        c.OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1)
        return at.error("", "cannot build the EC parameters: " + crypto::last_error());
    return key_from_params("EC", bld.get(), at);
}

std::string string_member(const json& jwk, const char* name) {
    auto it = jwk.find(name);
    return it != jwk.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// What a JWK can verify: RS256, ES256, or nothing Kiln accepts.
std::optional<JwsAlgorithm> usable_algorithm(const json& jwk) {
    std::string kty = string_member(jwk, "kty"), alg = string_member(jwk, "alg"), use = string_member(jwk, "use");
    if (!use.empty() && use != "sig") return std::nullopt;
    if (kty == "RSA" && (alg.empty() || alg == "RS256")) return JwsAlgorithm::RS256;
    if (kty == "EC" && string_member(jwk, "crv") == "P-256" && (alg.empty() || alg == "ES256")) return JwsAlgorithm::ES256;
    return std::nullopt;
}

}  // namespace

Result<Jwks> Jwks::parse(std::string_view text, const std::string& origin) {
    json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array())
        return make_error("JWKS " + origin, "not a JSON Web Key Set: expected {\"keys\": [...]} (RFC 7517 section 5)");
    Jwks out;
    const json& keys = doc["keys"];
    for (std::size_t i = 0; i < keys.size(); ++i) {
        KeyContext at{origin, i};
        if (!keys[i].is_object()) return at.error("", "not a JSON object");
        auto alg = usable_algorithm(keys[i]);
        if (!alg) {
            ++out.skipped_;
            continue;
        }
        if (keys[i].contains("kid") && !keys[i]["kid"].is_string()) return at.error("kid", "must be a string");
        auto key = *alg == JwsAlgorithm::RS256 ? rsa_key(keys[i], at) : p256_key(keys[i], at);
        if (!key) return key.error();
        out.keys_.push_back(Jwk{string_member(keys[i], "kid"), *alg, std::move(*key)});
    }
    if (out.keys_.empty())
        return make_error("JWKS " + origin, "no RS256 (RSA, 2048 bits or more) or ES256 (EC P-256) signing key among its " +
                                                std::to_string(keys.size()) + " keys");
    return out;
}

Result<Jwks> Jwks::load(const std::string& path) {
    auto text = read_file_text(path, "JWKS (server.auth.jwks_file)");
    if (!text) return text.error();
    return parse(*text, path);
}

const Jwk* Jwks::select(const std::optional<std::string>& kid, JwsAlgorithm alg) const {
    const Jwk* found = nullptr;
    for (const auto& k : keys_) {
        if (k.alg != alg || (kid && k.kid != *kid)) continue;
        // Without a kid the choice must be unambiguous; with one, the first
        // key that carries it wins, as kids are unique within a set.
        if (found && !kid) return nullptr;
        found = &k;
        if (kid) break;
    }
    return found;
}

}  // namespace kiln::auth
