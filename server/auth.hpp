// Who is calling the HTTP transport, and may they call this tool
// (docs/auth.md).
//
// The transport hands authenticate() the Authorization header of every
// request to the MCP endpoint and answers an AuthFailure with its status
// and WWW-Authenticate header; authorize() then gates each tools/call on
// the principal's scopes. Both are safe to call from many threads while
// reload() (on SIGHUP) swaps in a fresh tokens file or JWKS.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config.hpp"
#include "common/result.hpp"
#include "server/auth_reason.hpp"

namespace kiln::auth {

class BearerTokens;
class Jwks;

struct Principal {
    std::string name;              // tokens: the file's principal; jwt: "sub"
    std::set<std::string> scopes;  // tokens: the line's scopes; jwt: "scope" and "scp"
};

struct AuthFailure {
    int status = 401;              // 401, or 400 for a malformed header, 403 for a missing scope
    std::string www_authenticate;  // the header's value; never echoes what the client sent
    AuthReason reason = AuthReason::Missing;  // reason_name() is the metric label
};

// The principal of every request when server.auth.mode is none.
inline constexpr std::string_view kAnonymousPrincipal = "anonymous";

// The tools that run code, which server.auth.run_scopes gates.
bool is_run_tool(std::string_view tool_name);

class Authenticator {
public:
    // Checks that the keys fit together (each mode's files and URIs set,
    // nothing set that the mode would ignore) and loads the tokens file or
    // the JWKS. Errors name the configuration key.
    static Result<std::unique_ptr<Authenticator>> create(const AuthConfig& config);
    ~Authenticator();

    AuthMode mode() const { return config_.mode; }

    // `authorization` is the Authorization header's value, empty when the
    // request has none.
    std::variant<Principal, AuthFailure> authenticate(std::string_view authorization) const;
    // The same, at a given time (tests, and JWT expiry at a fixed instant).
    std::variant<Principal, AuthFailure> authenticate(std::string_view authorization,
                                                      std::chrono::system_clock::time_point now) const;

    // Nothing when `principal` holds every scope the call needs:
    // server.auth.scopes, and server.auth.run_scopes too for run_code and
    // run_command. `tool_name` is empty for a request that calls no tool.
    std::optional<AuthFailure> authorize(const Principal& principal, std::string_view tool_name) const;

    // Re-reads the tokens file or the JWKS. On an error the previous set
    // stays in force and the error says what is wrong with the new one.
    Status reload();

    // The RFC 9728 protected-resource metadata document (jwt mode only).
    std::optional<nlohmann::json> protected_resource_metadata() const;
    // Where to serve it: /.well-known/oauth-protected-resource, and that
    // with the resource's path appended (RFC 9728 section 3.1), e.g.
    // /.well-known/oauth-protected-resource/mcp. Empty outside jwt mode.
    std::vector<std::string> metadata_paths() const;
    // The absolute URL of the document, as 401 and 403 answers name it in
    // resource_metadata: the RFC 9728 form, whose "resource" matches.
    std::string resource_metadata_url() const;

private:
    explicit Authenticator(AuthConfig config);

    std::string challenge(const char* error, std::string_view scope) const;
    AuthFailure failure(AuthReason reason) const;
    std::variant<Principal, AuthFailure> check_token(std::string_view token,
                                                     std::chrono::system_clock::time_point now) const;

    AuthConfig config_;
    mutable std::mutex mutex_;  // guards the two pointers, not what they point to
    std::shared_ptr<const BearerTokens> tokens_;
    std::shared_ptr<const Jwks> jwks_;
};

}  // namespace kiln::auth
