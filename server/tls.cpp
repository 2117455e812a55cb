#include "server/tls.hpp"

#include "common/libcrypto.hpp"

namespace kiln::tls {

using crypto::LibCrypto;

struct Credentials::Pair {
    crypto::X509Ptr cert;
    crypto::PkeyPtr key;
    STACK_OF(X509)* chain = nullptr;  // the intermediates after the leaf, in file order

    ~Pair() {
        if (chain)
            crypto::lib().OPENSSL_sk_pop_free(reinterpret_cast<OPENSSL_STACK*>(chain),
                                              reinterpret_cast<OPENSSL_sk_freefunc>(crypto::lib().X509_free));
    }
};

namespace {

// PEM's default password callback would prompt on the terminal; a server
// must fail instead.
int no_password(char*, int, int, void*) { return 0; }

Error file_error(const std::string& key, const std::string& path, const std::string& message) {
    return make_error("read " + key + " " + path, message);
}

Result<crypto::BioPtr> open_pem(const std::string& key, const std::string& path) {
    crypto::BioPtr bio(crypto::lib().BIO_new_file(path.c_str(), "r"));
    if (!bio) return file_error(key, path, "cannot open it: " + crypto::last_error());
    return bio;
}

Status read_certificates(const std::string& path, Credentials::Pair& pair) {
    const LibCrypto& c = crypto::lib();
    auto bio = open_pem("server.tls.cert_file", path);
    if (!bio) return bio.error();
    pair.cert.reset(c.PEM_read_bio_X509(bio->get(), nullptr, no_password, nullptr));
    if (!pair.cert) return file_error("server.tls.cert_file", path, "no PEM certificate in it: " + crypto::last_error());
    pair.chain = reinterpret_cast<STACK_OF(X509)*>(c.OPENSSL_sk_new_null());
    if (!pair.chain) return file_error("server.tls.cert_file", path, "out of memory");
    while (X509* next = c.PEM_read_bio_X509(bio->get(), nullptr, no_password, nullptr)) {
        if (c.OPENSSL_sk_push(reinterpret_cast<OPENSSL_STACK*>(pair.chain), next) <= 0) {
            c.X509_free(next);
            return file_error("server.tls.cert_file", path, "out of memory");
        }
    }
    c.ERR_clear_error();  // the end of the file reads as "no start line"
    return {};
}

Result<std::shared_ptr<const Credentials::Pair>> read_pair(const TlsConfig& config) {
    const LibCrypto& c = crypto::lib();
    auto pair = std::make_shared<Credentials::Pair>();
    if (Status st = read_certificates(config.cert_file, *pair); !st) return st.error();
    auto bio = open_pem("server.tls.key_file", config.key_file);
    if (!bio) return bio.error();
    pair->key.reset(c.PEM_read_bio_PrivateKey(bio->get(), nullptr, no_password, nullptr));
    if (!pair->key)
        return file_error("server.tls.key_file", config.key_file,
                          "no unencrypted PEM private key in it: " + crypto::last_error());
    if (c.X509_check_private_key(pair->cert.get(), pair->key.get()) != 1)
        return file_error("server.tls.key_file", config.key_file,
                          "this key does not belong to the certificate in " + config.cert_file + ": " + crypto::last_error());
    return std::shared_ptr<const Credentials::Pair>(std::move(pair));
}

}  // namespace

Status check_config(const TlsConfig& config) {
    if (config.cert_file.empty() == config.key_file.empty()) return {};
    return make_error("config key '" + std::string(config.cert_file.empty() ? "server.tls.cert_file" : "server.tls.key_file") + "'",
                      "must be set too: TLS needs both server.tls.cert_file and server.tls.key_file");
}

Credentials::Credentials(TlsConfig config) : config_(std::move(config)) {}
Credentials::~Credentials() = default;

Result<std::unique_ptr<Credentials>> Credentials::load(const TlsConfig& config) {
    if (Status st = check_config(config); !st) return st.error();
    if (config.cert_file.empty()) return make_error("load TLS credentials", "server.tls.cert_file and key_file are not set");
    if (Status st = crypto::load_ssl(); !st) return st.error();
    std::unique_ptr<Credentials> out(new Credentials(config));
    if (Status st = out->reload(); !st) return st.error();
    return out;
}

Status Credentials::reload() {
    auto pair = read_pair(config_);
    if (!pair) return pair.error();
    std::lock_guard lock(mutex_);
    current_ = std::move(*pair);
    return {};
}

bool Credentials::setup(SSL_CTX& ctx) {
    const crypto::LibSsl& s = crypto::ssl();
    // SSL_CTX_set_min_proto_version is a macro over SSL_CTX_ctrl.
    if (s.SSL_CTX_ctrl(&ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, nullptr) != 1) return false;
    s.SSL_CTX_set_cert_cb(&ctx, &Credentials::on_handshake, this);
    return true;
}

int Credentials::on_handshake(SSL* ssl, void* self) {
    auto* creds = static_cast<Credentials*>(self);
    std::shared_ptr<const Pair> pair;
    {
        std::lock_guard lock(creds->mutex_);
        pair = creds->current_;
    }
    // The SSL takes references to the certificate, key and chain, so a
    // reload during the handshake frees nothing it uses.
    return crypto::ssl().SSL_use_cert_and_key(ssl, pair->cert.get(), pair->key.get(), pair->chain, 1) == 1 ? 1 : 0;
}

}  // namespace kiln::tls
