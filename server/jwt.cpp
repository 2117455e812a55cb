#include "server/jwt.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <optional>
#include <sstream>

#include "common/libcrypto.hpp"
#include "common/text.hpp"

namespace kiln::auth {
namespace {

using nlohmann::json;
using crypto::LibCrypto;

using MdCtxPtr = crypto::Owned<EVP_MD_CTX, &LibCrypto::EVP_MD_CTX_free>;
using EcdsaSigPtr = crypto::Owned<ECDSA_SIG, &LibCrypto::ECDSA_SIG_free>;
using BnPtr = crypto::Owned<BIGNUM, &LibCrypto::BN_free>;

constexpr std::size_t kEs256SignatureBytes = 64;

struct Parts {
    std::string_view header, payload, signature;
    std::string_view signing_input;  // "header.payload", what was signed
};

std::optional<Parts> split(std::string_view token) {
    auto first = token.find('.');
    if (first == std::string_view::npos) return std::nullopt;
    auto second = token.find('.', first + 1);
    if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) return std::nullopt;
    Parts p{token.substr(0, first), token.substr(first + 1, second - first - 1), token.substr(second + 1),
            token.substr(0, second)};
    if (p.header.empty() || p.payload.empty()) return std::nullopt;
    return p;
}

std::optional<json> decode_object(std::string_view segment) {
    auto bytes = base64url_decode(segment);
    if (!bytes) return std::nullopt;
    json j = json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    return j;
}

std::optional<JwsAlgorithm> algorithm(const json& header) {
    auto it = header.find("alg");
    if (it == header.end() || !it->is_string()) return std::nullopt;
    if (*it == "RS256") return JwsAlgorithm::RS256;
    if (*it == "ES256") return JwsAlgorithm::ES256;
    return std::nullopt;
}

// JWS carries an ECDSA signature as r and s, 32 bytes each (RFC 7518
// section 3.4); OpenSSL verifies the DER encoding of the same pair.
std::optional<std::string> es256_signature_to_der(const std::string& raw) {
    if (raw.size() != kEs256SignatureBytes) return std::nullopt;
    const LibCrypto& c = crypto::lib();
    const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
    BnPtr r(c.BN_bin2bn(bytes, kEs256SignatureBytes / 2, nullptr));
    BnPtr s(c.BN_bin2bn(bytes + kEs256SignatureBytes / 2, kEs256SignatureBytes / 2, nullptr));
    EcdsaSigPtr sig(c.ECDSA_SIG_new());
    if (!r || !s || !sig || c.ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return std::nullopt;
    (void)r.release();  // ECDSA_SIG_set0 took them
    (void)s.release();
    // Asked for the length first, i2d writes into our buffer, so nothing
    // needs OPENSSL_free.
    int len = c.i2d_ECDSA_SIG(sig.get(), nullptr);
    if (len <= 0) return std::nullopt;
    std::string out(static_cast<std::size_t>(len), '\0');
    auto* cursor = reinterpret_cast<unsigned char*>(out.data());
    if (c.i2d_ECDSA_SIG(sig.get(), &cursor) != len) return std::nullopt;
    return out;
}

bool signature_valid(const Parts& parts, const Jwk& key) {
    auto sig = base64url_decode(parts.signature);
    if (!sig) return false;
    if (key.alg == JwsAlgorithm::ES256) {
        sig = es256_signature_to_der(*sig);
        if (!sig) return false;
    }
    const LibCrypto& c = crypto::lib();
    MdCtxPtr ctx(c.EVP_MD_CTX_new());
    if (!ctx || c.EVP_DigestVerifyInit(ctx.get(), nullptr, c.EVP_sha256(), nullptr, key.key.get()) != 1) return false;
    int ok = c.EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                                reinterpret_cast<const unsigned char*>(parts.signing_input.data()), parts.signing_input.size());
    c.ERR_clear_error();  // a failed verification leaves an error queued on this thread
    return ok == 1;
}

bool audience_holds(const json& claims, const std::string& audience) {
    auto it = claims.find("aud");
    if (it == claims.end()) return false;
    if (it->is_string()) return *it == audience;
    if (!it->is_array()) return false;
    for (const auto& a : *it)
        if (a.is_string() && a == audience) return true;
    return false;
}

// A NumericDate claim (seconds since the epoch, maybe fractional).
std::optional<double> numeric_date(const json& claims, const char* name) {
    auto it = claims.find(name);
    if (it == claims.end() || !it->is_number()) return std::nullopt;
    double v = it->get<double>();
    if (!std::isfinite(v)) return std::nullopt;
    return v;
}

std::set<std::string> scopes_of(const json& claims) {
    std::set<std::string> out;
    if (auto it = claims.find("scope"); it != claims.end() && it->is_string()) {
        std::istringstream in(it->get<std::string>());
        for (std::string s; in >> s;) out.insert(s);
    }
    if (auto it = claims.find("scp"); it != claims.end() && it->is_array())
        for (const auto& s : *it)
            if (s.is_string()) out.insert(s.get<std::string>());
    return out;
}

std::variant<JwtClaims, AuthReason> check_claims(const json& claims, const JwtRequirements& want,
                                                 std::chrono::system_clock::time_point now) {
    auto iss = claims.find("iss");
    if (iss == claims.end() || !iss->is_string() || *iss != want.issuer) return AuthReason::WrongIssuer;
    if (!audience_holds(claims, want.audience)) return AuthReason::WrongAudience;
    double t = std::chrono::duration<double>(now.time_since_epoch()).count();
    double skew = static_cast<double>(want.clock_skew.count());
    // An access token without an expiry would be good forever.
    auto exp = numeric_date(claims, "exp");
    if (!exp) return AuthReason::Malformed;
    if (t >= *exp + skew) return AuthReason::Expired;
    if (claims.contains("nbf")) {
        auto nbf = numeric_date(claims, "nbf");
        if (!nbf) return AuthReason::Malformed;
        if (t + skew < *nbf) return AuthReason::NotYetValid;
    }
    auto sub = claims.find("sub");
    if (sub == claims.end() || !sub->is_string() || sub->get<std::string>().empty()) return AuthReason::Malformed;
    return JwtClaims{sub->get<std::string>(), scopes_of(claims)};
}

}  // namespace

std::variant<JwtClaims, AuthReason> verify_jwt(std::string_view token, const Jwks& keys, const JwtRequirements& want,
                                                std::chrono::system_clock::time_point now) {
    if (token.size() > kMaxJwtBytes) return AuthReason::Malformed;
    auto parts = split(token);
    if (!parts) return AuthReason::Malformed;
    auto header = decode_object(parts->header);
    if (!header) return AuthReason::Malformed;
    auto alg = algorithm(*header);
    if (!alg) return AuthReason::UnsupportedAlgorithm;
    // RFC 7515 section 4.1.11: extensions the recipient does not know make
    // the token invalid, and Kiln knows none.
    if (header->contains("crit")) return AuthReason::Malformed;
    std::optional<std::string> kid;
    if (auto it = header->find("kid"); it != header->end()) {
        if (!it->is_string()) return AuthReason::Malformed;
        kid = it->get<std::string>();
    }
    const Jwk* key = keys.select(kid, *alg);
    if (!key) return AuthReason::UnknownKey;
    if (!signature_valid(*parts, *key)) return AuthReason::BadSignature;
    auto claims = decode_object(parts->payload);
    if (!claims) return AuthReason::Malformed;
    return check_claims(*claims, want, now);
}

}  // namespace kiln::auth
