#include "server/auth.hpp"

#include <algorithm>
#include <cctype>

#include "server/bearer_tokens.hpp"
#include "server/jwks.hpp"
#include "server/jwt.hpp"

namespace kiln::auth {
namespace {

constexpr std::string_view kWellKnown = "/.well-known/oauth-protected-resource";
constexpr std::string_view kBearer = "bearer";

Error config_error(const std::string& key, const std::string& message) {
    return make_error("config key '" + key + "'", message);
}

// A key the mode would ignore is refused, not accepted and ignored.
Status refuse_if_set(bool set, const std::string& key, AuthMode mode) {
    if (!set) return {};
    return config_error(key, "is set but server.auth.mode is " + std::string(choice_name(mode)) +
                                 ", which does not use it; remove it or choose the mode that does (docs/auth.md)");
}

Status require(bool set, const std::string& key, AuthMode mode, const std::string& what) {
    if (set) return {};
    return config_error(key, "must be set when server.auth.mode is " + std::string(choice_name(mode)) + ": " + what);
}

Status check_config(const AuthConfig& c) {
    const AuthMode m = c.mode;
    bool jwt = m == AuthMode::Jwt, tokens = m == AuthMode::Tokens;
    std::vector<Status> checks = {
        tokens ? require(!c.tokens_file.empty(), "server.auth.tokens_file", m, "the file of '<principal> <token>' lines")
               : refuse_if_set(!c.tokens_file.empty(), "server.auth.tokens_file", m),
        jwt ? require(!c.jwks_file.empty(), "server.auth.jwks_file", m, "the authorization server's keys")
            : refuse_if_set(!c.jwks_file.empty(), "server.auth.jwks_file", m),
        jwt ? require(!c.issuer.empty(), "server.auth.issuer", m, "the iss of the tokens to accept")
            : refuse_if_set(!c.issuer.empty(), "server.auth.issuer", m),
        jwt ? require(!c.resource.empty(), "server.auth.resource", m, "this server's URI, the aud tokens must name")
            : refuse_if_set(!c.resource.empty(), "server.auth.resource", m),
        refuse_if_set(!jwt && !c.authorization_servers.empty(), "server.auth.authorization_servers", m),
        refuse_if_set(m == AuthMode::None && !c.scopes.empty(), "server.auth.scopes", m),
        refuse_if_set(m == AuthMode::None && !c.run_scopes.empty(), "server.auth.run_scopes", m),
    };
    for (auto& st : checks)
        if (!st) return st;
    return {};
}

// "https://host:8443/mcp" -> {"https://host:8443", "/mcp"}.
std::pair<std::string, std::string> origin_and_path(const std::string& uri) {
    auto scheme_end = uri.find("://");
    auto path_start = uri.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
    if (path_start == std::string::npos) return {uri, ""};
    std::string path = uri.substr(path_start, uri.find('?', path_start) - path_start);
    if (path == "/") path.clear();
    return {uri.substr(0, path_start), path};
}

std::string join(const std::set<std::string>& words) {
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
    return out;
}

// The token of "Bearer <token>" (the scheme is case-insensitive, RFC 9110
// section 11.1); nullopt when the header is not a Bearer one at all, ""
// when it is but the token is missing or malformed.
std::optional<std::string_view> bearer_token(std::string_view header) {
    auto space = header.find(' ');
    std::string_view scheme = header.substr(0, space);
    bool is_bearer = scheme.size() == kBearer.size() &&
                     std::equal(scheme.begin(), scheme.end(), kBearer.begin(), [](char a, char b) {
                         return std::tolower(static_cast<unsigned char>(a)) == b;
                     });
    if (!is_bearer) return std::nullopt;
    if (space == std::string_view::npos) return std::string_view{};
    std::string_view token = header.substr(space);
    token.remove_prefix(std::min(token.find_first_not_of(' '), token.size()));
    token = token.substr(0, token.find_last_not_of(' ') + 1);
    if (!is_b64token(token)) return std::string_view{};
    return token;
}

// Fixed texts: an error_description never carries what the client sent.
const char* description(AuthReason r) {
    switch (r) {
        case AuthReason::Missing: return "";
        case AuthReason::MalformedHeader: return "the Authorization header must be 'Bearer <token>'";
        case AuthReason::Malformed: return "the token is not a well-formed access token";
        case AuthReason::UnknownToken: return "the token is not known";
        case AuthReason::UnsupportedAlgorithm: return "the token must be signed with RS256 or ES256";
        case AuthReason::UnknownKey: return "the token's signing key is not known";
        case AuthReason::BadSignature: return "the token's signature does not verify";
        case AuthReason::Expired: return "the token has expired";
        case AuthReason::NotYetValid: return "the token is not valid yet";
        case AuthReason::WrongIssuer: return "the token was issued by another authorization server";
        case AuthReason::WrongAudience: return "the token was issued for another resource";
        case AuthReason::InsufficientScope: return "the token lacks a scope this request needs";
    }
    return "";
}

}  // namespace

bool is_run_tool(std::string_view tool_name) { return tool_name == "run_code" || tool_name == "run_command"; }

Authenticator::Authenticator(AuthConfig config) : config_(std::move(config)) {}
Authenticator::~Authenticator() = default;

Result<std::unique_ptr<Authenticator>> Authenticator::create(const AuthConfig& config) {
    if (Status st = check_config(config); !st) return st.error();
    std::unique_ptr<Authenticator> a(new Authenticator(config));
    if (Status st = a->reload(); !st) return st.error();
    return a;
}

Status Authenticator::reload() {
    switch (config_.mode) {
        case AuthMode::None: return {};
        case AuthMode::Tokens: {
            auto t = BearerTokens::load(config_.tokens_file);
            if (!t) return t.error();
            std::lock_guard lock(mutex_);
            tokens_ = std::make_shared<const BearerTokens>(std::move(*t));
            return {};
        }
        case AuthMode::Jwt: {
            auto k = Jwks::load(config_.jwks_file);
            if (!k) return k.error();
            std::lock_guard lock(mutex_);
            jwks_ = std::make_shared<const Jwks>(std::move(*k));
            return {};
        }
    }
    return {};
}

std::string Authenticator::challenge(const char* error, std::string_view scope) const {
    std::string out = "Bearer ";
    auto param = [&out](std::string_view name, std::string_view value) {
        if (out.back() != ' ') out += ", ";
        out += std::string(name) + "=\"" + std::string(value) + "\"";
    };
    if (config_.mode != AuthMode::Jwt) param("realm", "kiln");
    if (error) param("error", error);
    if (config_.mode == AuthMode::Jwt) param("resource_metadata", resource_metadata_url());
    if (!scope.empty()) param("scope", scope);
    return out;
}

AuthFailure Authenticator::failure(AuthReason reason) const {
    std::set<std::string> base(config_.scopes.begin(), config_.scopes.end());
    AuthFailure f;
    f.reason = reason;
    switch (reason) {
        case AuthReason::Missing:
            // RFC 6750 section 3.1: no error code when no credentials came.
            f.www_authenticate = challenge(nullptr, join(base));
            break;
        case AuthReason::MalformedHeader:
            f.status = 400;
            f.www_authenticate = challenge("invalid_request", {});
            break;
        case AuthReason::InsufficientScope:  // built by authorize(), which knows the scopes
        case AuthReason::Malformed:
        case AuthReason::UnknownToken:
        case AuthReason::UnsupportedAlgorithm:
        case AuthReason::UnknownKey:
        case AuthReason::BadSignature:
        case AuthReason::Expired:
        case AuthReason::NotYetValid:
        case AuthReason::WrongIssuer:
        case AuthReason::WrongAudience:
            f.www_authenticate = challenge("invalid_token", {});
            f.www_authenticate += std::string(", error_description=\"") + description(reason) + "\"";
            break;
    }
    return f;
}

std::variant<Principal, AuthFailure> Authenticator::authenticate(std::string_view authorization) const {
    return authenticate(authorization, std::chrono::system_clock::now());
}

std::variant<Principal, AuthFailure> Authenticator::authenticate(std::string_view authorization,
                                                                 std::chrono::system_clock::time_point now) const {
    if (config_.mode == AuthMode::None) return Principal{std::string(kAnonymousPrincipal), {}};
    auto token = bearer_token(authorization);
    if (!token) return failure(AuthReason::Missing);
    if (token->empty()) return failure(AuthReason::MalformedHeader);
    return check_token(*token, now);
}

std::variant<Principal, AuthFailure> Authenticator::check_token(std::string_view token,
                                                                std::chrono::system_clock::time_point now) const {
    std::shared_ptr<const BearerTokens> tokens;
    std::shared_ptr<const Jwks> jwks;
    {
        std::lock_guard lock(mutex_);
        tokens = tokens_;
        jwks = jwks_;
    }
    if (tokens) {
        const TokenEntry* e = tokens->find(token);
        if (!e) return failure(AuthReason::UnknownToken);
        return Principal{e->principal, e->scopes};
    }
    JwtRequirements want{config_.issuer, config_.resource,
                         std::chrono::duration_cast<std::chrono::seconds>(config_.clock_skew)};
    auto checked = verify_jwt(token, *jwks, want, now);
    if (auto* reason = std::get_if<AuthReason>(&checked)) return failure(*reason);
    auto& claims = std::get<JwtClaims>(checked);
    return Principal{std::move(claims.subject), std::move(claims.scopes)};
}

std::optional<AuthFailure> Authenticator::authorize(const Principal& principal, std::string_view tool_name) const {
    if (config_.mode == AuthMode::None) return std::nullopt;
    std::set<std::string> needed(config_.scopes.begin(), config_.scopes.end());
    if (is_run_tool(tool_name)) needed.insert(config_.run_scopes.begin(), config_.run_scopes.end());
    bool has_all = std::includes(principal.scopes.begin(), principal.scopes.end(), needed.begin(), needed.end());
    if (has_all) return std::nullopt;
    // The scopes this call needs, together with those the token already
    // has, so a client that asks for them again loses none (MCP's
    // "recommended approach" to scope challenges).
    std::set<std::string> ask = needed;
    ask.insert(principal.scopes.begin(), principal.scopes.end());
    AuthFailure f;
    f.status = 403;
    f.reason = AuthReason::InsufficientScope;
    f.www_authenticate = challenge("insufficient_scope", join(ask)) + ", error_description=\"" +
                         description(AuthReason::InsufficientScope) + "\"";
    return f;
}

std::optional<nlohmann::json> Authenticator::protected_resource_metadata() const {
    if (config_.mode != AuthMode::Jwt) return std::nullopt;
    std::set<std::string> scopes(config_.scopes.begin(), config_.scopes.end());
    scopes.insert(config_.run_scopes.begin(), config_.run_scopes.end());
    std::vector<std::string> servers = config_.authorization_servers;
    if (servers.empty()) servers.push_back(config_.issuer);
    return nlohmann::json{{"resource", config_.resource},
                          {"authorization_servers", servers},
                          {"scopes_supported", scopes},
                          {"bearer_methods_supported", {"header"}},
                          {"resource_name", "Kiln"}};
}

std::vector<std::string> Authenticator::metadata_paths() const {
    if (config_.mode != AuthMode::Jwt) return {};
    std::vector<std::string> out{std::string(kWellKnown)};
    auto path = origin_and_path(config_.resource).second;
    if (!path.empty()) out.push_back(std::string(kWellKnown) + path);
    return out;
}

std::string Authenticator::resource_metadata_url() const {
    auto [origin, path] = origin_and_path(config_.resource);
    return origin + std::string(kWellKnown) + path;
}

}  // namespace kiln::auth
