// The HTTP transport's certificate and key (server.tls.*), handed to each
// new TLS connection, and replaced on SIGHUP without a restart.
//
// cpp-httplib's SSLServer builds its SSL_CTX and lets a callback set it up:
// setup() installs OpenSSL's certificate callback there, which gives every
// handshake the credentials current at that moment. reload() reads the
// files again and swaps them in for later handshakes; connections already
// up keep theirs. Nothing changes the shared SSL_CTX after setup, so no
// handshake in flight can see it half-modified.
//
// libssl is reached through common/libcrypto.hpp's table, loaded when
// load() first runs, so a Kiln that serves no TLS never maps it.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include <openssl/ssl.h>

#include "common/config.hpp"
#include "common/result.hpp"

namespace kiln::tls {

class Credentials {
public:
    // Loads libssl and the PEM files; the key must match the certificate.
    // Errors name the file and the configuration key.
    static Result<std::unique_ptr<Credentials>> load(const TlsConfig& config);
    ~Credentials();

    // For httplib::SSLServer's setup callback: TLS 1.2 at least, and the
    // certificate callback. This object must outlive the server.
    bool setup(SSL_CTX& ctx);

    // Reads the files again. On an error the current pair stays in use.
    Status reload();

    struct Pair;  // a certificate, its chain and its key

private:
    explicit Credentials(TlsConfig config);
    static int on_handshake(SSL* ssl, void* self);

    TlsConfig config_;
    mutable std::mutex mutex_;
    std::shared_ptr<const Pair> current_;
};

// Whether a TLS configuration is complete: both files or neither.
Status check_config(const TlsConfig& config);

}  // namespace kiln::tls
