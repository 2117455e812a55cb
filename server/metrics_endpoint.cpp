#include "server/metrics_endpoint.hpp"

#include <strings.h>

#include "common/hash.hpp"
#include "common/kiln_metrics.hpp"
#include "common/secret_file.hpp"

namespace kiln::server {
namespace {

// A token shorter than this is guessable by a scraper's neighbours.
constexpr std::size_t kMinTokenBytes = 16;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    return s;
}

// Compared as SHA-256 digests, every byte, so neither the time taken nor an
// early exit tells a guesser how much of the token it had right.
bool same_digest(const std::string& a, const std::string& b) {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

// The credentials of "Bearer <token>" (the scheme is case-insensitive,
// RFC 7235), or nothing.
std::optional<std::string_view> bearer_token(std::string_view authorization) {
    constexpr std::string_view scheme = "bearer ";
    if (authorization.size() <= scheme.size() ||
        ::strncasecmp(authorization.data(), scheme.data(), scheme.size()) != 0)
        return std::nullopt;
    return trim(authorization.substr(scheme.size()));
}

MetricsAnswer unauthorized(metrics::AuthFailure reason) {
    metrics::record_auth_failure(reason);
    return {401, "text/plain; charset=utf-8", "401 Unauthorized: GET /metrics needs its bearer token (server.metrics.token_file)\n",
            "Bearer realm=\"kiln-metrics\""};
}

}  // namespace

Result<MetricsEndpoint> MetricsEndpoint::create(const ServerConfig& config) {
    MetricsEndpoint endpoint;
    endpoint.enabled_ = config.metrics_enabled;
    if (config.metrics_token_file.empty()) return endpoint;
    auto text = read_secret_file(config.metrics_token_file, "metrics token");
    if (!text) return std::move(text).error().wrap("config key 'server.metrics.token_file'");
    std::string_view token = trim(*text);
    if (token.size() < kMinTokenBytes || token.find_first_of(" \t\r\n") != std::string_view::npos)
        return make_error("config key 'server.metrics.token_file'",
                          config.metrics_token_file + " must hold one token of at least " + std::to_string(kMinTokenBytes) +
                              " characters without spaces, e.g. from: openssl rand -hex 32");
    endpoint.token_sha256_ = sha256_hex(token);
    return endpoint;
}

MetricsAnswer MetricsEndpoint::answer(std::string_view authorization) const {
    if (!enabled_) return {404, "text/plain; charset=utf-8", "404 Not Found: metrics are off (server.metrics.enabled)\n", {}};
    if (!token_sha256_.empty()) {
        if (authorization.empty()) return unauthorized(metrics::AuthFailure::Missing);
        auto token = bearer_token(authorization);
        if (!token) return unauthorized(metrics::AuthFailure::Malformed);
        if (!same_digest(sha256_hex(*token), token_sha256_)) return unauthorized(metrics::AuthFailure::UnknownToken);
    }
    return {200, metrics::kContentType, metrics::render(), {}};
}

}  // namespace kiln::server
