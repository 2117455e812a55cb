// A minimal HTTP/1.1 client for the Docker Engine API on its unix socket.
//
// Why not a library: Debian 12's cpp-httplib (0.11.4) has no unix-socket
// client, and libcurl would bring a dozen shared libraries (TLS, HTTP/2,
// LDAP...) into a process that only ever speaks plain HTTP/1.1 to one
// local socket. The Engine API needs little: one request per connection
// (Connection: close), bodies by Content-Length, chunked or until EOF, and
// for exec and attach a hijacked connection (101 UPGRADED) that then
// carries the raw multiplexed stream. Every read and write waits with
// poll() against a deadline and an optional cancel fd, so a hung daemon
// cannot hang a tool call.
#pragma once

#include <chrono>
#include <string>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace kiln::sandbox::docker {

using Clock = std::chrono::steady_clock;

struct Response {
    int status = 0;
    std::string body;
};

// A hijacked connection: the socket after the response's headers, and the
// stream bytes already read with them.
struct Stream {
    UniqueFd fd;
    std::string pending;
};

class Client {
public:
    // socket_path: the daemon's unix socket; api_version: "1.41" (every
    // path is sent as /v1.41/...).
    Client(std::string socket_path, std::string api_version)
        : socket_(std::move(socket_path)), version_(std::move(api_version)) {}

    const std::string& socket_path() const { return socket_; }

    // method: GET, POST, PUT or DELETE. body: JSON, or empty for none.
    Result<Response> request(const std::string& method, const std::string& path, const std::string& body = {},
                             std::chrono::milliseconds timeout = std::chrono::milliseconds(30'000)) const;
    // Like request(), with a versionless path (GET /_ping, GET /version).
    Result<Response> request_unversioned(const std::string& method, const std::string& path,
                                         std::chrono::milliseconds timeout) const;
    // POST that upgrades the connection to a raw stream (exec start, attach).
    Result<Stream> hijack(const std::string& path, const std::string& body, std::chrono::milliseconds timeout) const;

private:
    Result<UniqueFd> connect_socket() const;
    Result<Response> exchange(const std::string& request, Clock::time_point deadline, bool hijack,
                              Stream* stream) const;

    std::string socket_, version_;
};

// "%2F"-style escaping of a query value (a JSON filter, say).
std::string url_encode(const std::string& text);

}  // namespace kiln::sandbox::docker
