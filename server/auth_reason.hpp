// Why a request was not let in: one closed set, shared by the token
// checkers (bearer_tokens, jwt) and the authenticator, whose names are the
// values of the auth-failure metric's label. None of them echoes anything
// the client sent, so the label cannot grow without bound.
#pragma once

#include <array>
#include <string_view>

namespace kiln::auth {

enum class AuthReason {
    Missing,              // no Authorization header, or not a Bearer one
    MalformedHeader,      // "Bearer" without one well-formed token after it
    Malformed,            // a token that does not parse (not a JWT, bad JSON, missing claim)
    UnknownToken,         // tokens mode: no line of the tokens file matches
    UnsupportedAlgorithm, // a JWT signed with anything but RS256 or ES256 ("none", HS256...)
    UnknownKey,           // no key of the JWKS has the token's kid and algorithm
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    InsufficientScope,
};

inline constexpr std::array kAuthReasons = {
    AuthReason::Missing,      AuthReason::MalformedHeader, AuthReason::Malformed,   AuthReason::UnknownToken,
    AuthReason::UnsupportedAlgorithm, AuthReason::UnknownKey, AuthReason::BadSignature, AuthReason::Expired,
    AuthReason::NotYetValid,  AuthReason::WrongIssuer,     AuthReason::WrongAudience, AuthReason::InsufficientScope,
};

constexpr std::string_view reason_name(AuthReason r) {
    switch (r) {
        case AuthReason::Missing: return "missing";
        case AuthReason::MalformedHeader: return "malformed_header";
        case AuthReason::Malformed: return "malformed";
        case AuthReason::UnknownToken: return "unknown_token";
        case AuthReason::UnsupportedAlgorithm: return "unsupported_algorithm";
        case AuthReason::UnknownKey: return "unknown_key";
        case AuthReason::BadSignature: return "bad_signature";
        case AuthReason::Expired: return "expired";
        case AuthReason::NotYetValid: return "not_yet_valid";
        case AuthReason::WrongIssuer: return "wrong_issuer";
        case AuthReason::WrongAudience: return "wrong_audience";
        case AuthReason::InsufficientScope: return "insufficient_scope";
    }
    return "?";
}

}  // namespace kiln::auth
