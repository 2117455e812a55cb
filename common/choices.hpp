// The closed sets of values that configuration keys and policy fields take.
//
// Each is an enum class, parsed once when the configuration is loaded, so
// the compiler (-Wswitch-enum) checks every switch over it and no code
// compares strings. One name table per enum serves parsing, error messages
// and printing. A value that is named but not implemented yet stays in its
// table with implemented = false: it is refused with a message that says
// so, instead of being accepted and ignored.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace kiln {

enum class SeccompProfile { Default, Strict };
enum class NetworkMode { None };  // own network namespace, loopback only (C003)
enum class ValidationMode { Enforce, Warn, Off };
enum class AuditOnFailure { FailClosed, Continue };
enum class WorkspaceNetwork { Session, Run };  // one namespace per session, or per run
enum class Transport { Stdio, Http };
enum class RuntimeKind { Native, Docker };
// How HTTP clients authenticate: not at all, bearer tokens from a file, or
// OAuth 2.1 JWT access tokens checked against a JWKS file (docs/auth.md).
enum class AuthMode { None, Tokens, Jwt };
// Where explicit workspaces live: this machine's tmpfs, or a directory every
// replica mounts (docs/workspaces.md).
enum class WorkspaceStoreKind { Local, Shared };

template <class E>
struct ChoiceName {
    E value;
    std::string_view name;
    bool implemented = true;
};

inline constexpr ChoiceName<SeccompProfile> kSeccompProfileNames[] = {
    {SeccompProfile::Default, "default"}, {SeccompProfile::Strict, "strict"}};
inline constexpr ChoiceName<NetworkMode> kNetworkModeNames[] = {{NetworkMode::None, "none"}};
inline constexpr ChoiceName<ValidationMode> kValidationModeNames[] = {
    {ValidationMode::Enforce, "enforce"}, {ValidationMode::Warn, "warn"}, {ValidationMode::Off, "off"}};
inline constexpr ChoiceName<AuditOnFailure> kAuditOnFailureNames[] = {
    {AuditOnFailure::FailClosed, "fail_closed"}, {AuditOnFailure::Continue, "continue"}};
inline constexpr ChoiceName<WorkspaceNetwork> kWorkspaceNetworkNames[] = {
    {WorkspaceNetwork::Session, "session"}, {WorkspaceNetwork::Run, "run"}};
inline constexpr ChoiceName<Transport> kTransportNames[] = {
    {Transport::Stdio, "stdio"}, {Transport::Http, "http"}};
inline constexpr ChoiceName<RuntimeKind> kRuntimeKindNames[] = {{RuntimeKind::Native, "native"},
                                                                 {RuntimeKind::Docker, "docker"}};
inline constexpr ChoiceName<AuthMode> kAuthModeNames[] = {
    {AuthMode::None, "none"}, {AuthMode::Tokens, "tokens"}, {AuthMode::Jwt, "jwt"}};
inline constexpr ChoiceName<WorkspaceStoreKind> kWorkspaceStoreKindNames[] = {
    {WorkspaceStoreKind::Local, "local"}, {WorkspaceStoreKind::Shared, "shared"}};

// The table of each enum, found by overload on a value of it.
constexpr std::span<const ChoiceName<SeccompProfile>> choice_names(SeccompProfile) { return kSeccompProfileNames; }
constexpr std::span<const ChoiceName<NetworkMode>> choice_names(NetworkMode) { return kNetworkModeNames; }
constexpr std::span<const ChoiceName<ValidationMode>> choice_names(ValidationMode) { return kValidationModeNames; }
constexpr std::span<const ChoiceName<AuditOnFailure>> choice_names(AuditOnFailure) { return kAuditOnFailureNames; }
constexpr std::span<const ChoiceName<WorkspaceNetwork>> choice_names(WorkspaceNetwork) { return kWorkspaceNetworkNames; }
constexpr std::span<const ChoiceName<Transport>> choice_names(Transport) { return kTransportNames; }
constexpr std::span<const ChoiceName<RuntimeKind>> choice_names(RuntimeKind) { return kRuntimeKindNames; }
constexpr std::span<const ChoiceName<AuthMode>> choice_names(AuthMode) { return kAuthModeNames; }
constexpr std::span<const ChoiceName<WorkspaceStoreKind>> choice_names(WorkspaceStoreKind) { return kWorkspaceStoreKindNames; }

template <class E>
std::string_view choice_name(E value) {
    for (const auto& c : choice_names(value))
        if (c.value == value) return c.name;
    return "?";
}

// "a, b or c": the names of E, all of them or only the implemented ones.
template <class E>
std::string choice_list(bool implemented_only = false) {
    std::string out;
    std::size_t n = 0, count = 0;
    for (const auto& c : choice_names(E{}))
        if (c.implemented || !implemented_only) ++count;
    for (const auto& c : choice_names(E{})) {
        if (implemented_only && !c.implemented) continue;
        out += (n == 0 ? "" : n + 1 == count ? " or " : ", ") + std::string(c.name);
        ++n;
    }
    return out;
}

// The enumerator named `text`. Errors name the allowed values, and say so
// when the name is known but not implemented yet.
template <class E>
Result<E> parse_choice(std::string_view text) {
    for (const auto& c : choice_names(E{})) {
        if (c.name != text) continue;
        if (c.implemented) return c.value;
        return make_error("", "'" + std::string(text) + "' is not implemented yet; use " + choice_list<E>(true));
    }
    return make_error("", "'" + std::string(text) + "' is not valid: expected " + choice_list<E>(true));
}

}  // namespace kiln
