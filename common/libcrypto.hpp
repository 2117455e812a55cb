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

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/result.hpp"

namespace kiln::crypto {

// Every libcrypto function Kiln calls; each pointer has the exact type the
// OpenSSL headers declare.
#define KILN_LIBCRYPTO_FUNCTIONS(X)                                                                   \
    X(EVP_sha256) X(EVP_Digest) X(EVP_MD_CTX_new) X(EVP_MD_CTX_free) X(EVP_DigestInit_ex)            \
    X(EVP_DigestUpdate) X(EVP_DigestFinal_ex) X(HMAC) X(EVP_EncodeBlock) X(EVP_DecodeBlock)           \
    X(RAND_bytes) X(EVP_aes_256_gcm) X(EVP_CIPHER_CTX_new) X(EVP_CIPHER_CTX_free) X(EVP_CIPHER_CTX_ctrl) \
    X(EVP_EncryptInit_ex) X(EVP_EncryptUpdate) X(EVP_EncryptFinal_ex) X(EVP_DecryptInit_ex)            \
    X(EVP_DecryptUpdate) X(EVP_DecryptFinal_ex)

struct LibCrypto {
#define KILN_LIBCRYPTO_POINTER(name) decltype(&::name) name = nullptr;
    KILN_LIBCRYPTO_FUNCTIONS(KILN_LIBCRYPTO_POINTER)
#undef KILN_LIBCRYPTO_POINTER
};

// Loads libcrypto once (later calls return the first outcome). A front end
// that will need it (kiln serve) calls this up front, so a broken
// installation is reported when it starts, not at its first audit record.
Status load();

// The loaded functions. When libcrypto cannot be loaded this prints why and
// aborts: the same installation fails at exec time when the library is
// linked, and hashing, signing or sealing nothing must not pass for success.
const LibCrypto& lib();

}  // namespace kiln::crypto
