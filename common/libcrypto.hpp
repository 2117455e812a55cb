// OpenSSL's libcrypto, loaded the first time Kiln hashes, encodes or
// encrypts rather than when the program starts.
//
// Linked the ordinary way, libcrypto cost every kiln process about 1 ms
// before main(): the dynamic loader binds some 3,000 of its symbols and its
// constructor probes the CPU with cpuid, which traps to the hypervisor in a
// VM. Most invocations (kiln run, kiln check, kiln version) never use it.
// It is still the system's shared libcrypto.so.3, found by the dynamic
// loader as before, so the distribution's security updates apply; packages
// must list it as a dependency themselves (dpkg-shlibdeps no longer sees it).
// systemd loads libraries it seldom needs the same way (dlopen_many_sym_or_warn).
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "common/result.hpp"

namespace kiln::crypto {

// Every libcrypto function Kiln calls; each pointer has the exact type the
// OpenSSL headers declare.
#define KILN_LIBCRYPTO_FUNCTIONS(X)                                                                   \
    X(EVP_sha256) X(EVP_Digest) X(EVP_MD_CTX_new) X(EVP_MD_CTX_free) X(EVP_DigestInit_ex)            \
    X(EVP_DigestUpdate) X(EVP_DigestFinal_ex) X(HMAC) X(EVP_EncodeBlock) X(EVP_DecodeBlock)           \
    X(RAND_bytes) X(EVP_aes_256_gcm) X(EVP_CIPHER_CTX_new) X(EVP_CIPHER_CTX_free) X(EVP_CIPHER_CTX_ctrl) \
    X(EVP_EncryptInit_ex) X(EVP_EncryptUpdate) X(EVP_EncryptFinal_ex) X(EVP_DecryptInit_ex)            \
    X(EVP_DecryptUpdate) X(EVP_DecryptFinal_ex)                                                       \
    KILN_LIBCRYPTO_AUTH_FUNCTIONS(X)

// JWT signatures (server/jwt.cpp, server/jwks.cpp), token digests compared in
// constant time (server/bearer_tokens.cpp) and TLS certificates (server/tls.cpp).
#define KILN_LIBCRYPTO_AUTH_FUNCTIONS(X)                                                              \
    X(EVP_DigestVerifyInit) X(EVP_DigestVerify) X(EVP_PKEY_free) X(EVP_PKEY_get_bits)                 \
    X(EVP_PKEY_CTX_new_from_name) X(EVP_PKEY_CTX_free) X(EVP_PKEY_fromdata_init) X(EVP_PKEY_fromdata)  \
    X(OSSL_PARAM_BLD_new) X(OSSL_PARAM_BLD_free) X(OSSL_PARAM_BLD_push_BN)                             \
    X(OSSL_PARAM_BLD_push_utf8_string) X(OSSL_PARAM_BLD_push_octet_string) X(OSSL_PARAM_BLD_to_param) \
    X(OSSL_PARAM_free) X(BN_bin2bn) X(BN_free) X(ECDSA_SIG_new) X(ECDSA_SIG_free) X(ECDSA_SIG_set0)    \
    X(i2d_ECDSA_SIG) X(CRYPTO_memcmp) X(BIO_new_file) X(BIO_free) X(PEM_read_bio_X509)                \
    X(PEM_read_bio_PrivateKey) X(X509_free) X(X509_check_private_key) X(OPENSSL_sk_new_null)          \
    X(OPENSSL_sk_push) X(OPENSSL_sk_pop_free) X(ERR_get_error) X(ERR_error_string_n) X(ERR_clear_error)

// The libssl functions Kiln's TLS code calls (server/tls.cpp); libssl.so.3
// is loaded, with the libcrypto it needs, only when TLS is configured.
#define KILN_LIBSSL_FUNCTIONS(X) X(SSL_CTX_set_cert_cb) X(SSL_use_cert_and_key) X(SSL_CTX_ctrl)

struct LibCrypto {
#define KILN_LIBCRYPTO_POINTER(name) decltype(&::name) name = nullptr;
    KILN_LIBCRYPTO_FUNCTIONS(KILN_LIBCRYPTO_POINTER)
#undef KILN_LIBCRYPTO_POINTER
};

struct LibSsl {
#define KILN_LIBSSL_POINTER(name) decltype(&::name) name = nullptr;
    KILN_LIBSSL_FUNCTIONS(KILN_LIBSSL_POINTER)
#undef KILN_LIBSSL_POINTER
};

// Loads libcrypto once (later calls return the first outcome). A front end
// that will need it (kiln serve) calls this up front, so a broken
// installation is reported when it starts, not at its first audit record.
Status load();

// The loaded functions. When libcrypto cannot be loaded this prints why and
// aborts: the same installation fails at exec time when the library is
// linked, and hashing, signing or sealing nothing must not pass for success.
const LibCrypto& lib();

// The same for libssl.so.3.
Status load_ssl();
const LibSsl& ssl();

// The text of OpenSSL's most recent error on this thread ("" if none), for
// messages; the queue is emptied.
std::string last_error();

// unique_ptr deleters that free through the loaded library:
// Owned<EVP_PKEY, &LibCrypto::EVP_PKEY_free>.
template <auto Free>
struct Freer {
    template <class T>
    void operator()(T* p) const {
        if (p) (lib().*Free)(p);
    }
};
template <class T, auto Free>
using Owned = std::unique_ptr<T, Freer<Free>>;

using PkeyPtr = Owned<EVP_PKEY, &LibCrypto::EVP_PKEY_free>;
using X509Ptr = Owned<X509, &LibCrypto::X509_free>;
using BioPtr = Owned<BIO, &LibCrypto::BIO_free>;

}  // namespace kiln::crypto
