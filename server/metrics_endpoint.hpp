// GET /metrics for the HTTP transport: Kiln's metrics as Prometheus text,
// behind their own bearer token when server.metrics.token_file is set.
// The transport passes the Authorization header in and sends back what
// answer() says; it counts the response in kiln_http_requests_total like
// any other.
#pragma once

#include <string>
#include <string_view>

#include "common/config.hpp"
#include "common/result.hpp"

namespace kiln::server {

struct MetricsAnswer {
    int status = 200;
    std::string content_type;      // the header to send
    std::string body;
    std::string www_authenticate;  // with 401: the WWW-Authenticate header
};

class MetricsEndpoint {
public:
    // Reads the token file now, so a missing or loose one stops the server
    // at start; errors name the key.
    static Result<MetricsEndpoint> create(const ServerConfig& config);

    bool enabled() const { return enabled_; }
    // `authorization` is the request's Authorization header, empty when it
    // has none. 404 when disabled, 401 (counted as an auth failure) when a
    // token guards the metrics and the request does not bear it, else 200.
    MetricsAnswer answer(std::string_view authorization) const;

private:
    bool enabled_ = true;
    std::string token_sha256_;  // empty: no token asked for
};

}  // namespace kiln::server
