#include "common/libcrypto.hpp"

#include <dlfcn.h>
#include <openssl/opensslv.h>

#include <cstdio>
#include <cstdlib>

namespace kiln::crypto {
namespace {

// The sonames belong to the major version the headers describe; a build
// against another major must not load a library with other signatures.
#if OPENSSL_VERSION_MAJOR != 3
#error "libcrypto.cpp loads libcrypto.so.3 and libssl.so.3: update the sonames for this OpenSSL major version"
#endif
constexpr const char* kCryptoSoname = "libcrypto.so.3";
constexpr const char* kSslSoname = "libssl.so.3";

template <class Table>
struct Loaded {
    Table functions;
    Status status;
};

Status resolve(void* handle, LibCrypto& c) {
#define KILN_LIBCRYPTO_RESOLVE(name)                                                                  \
    c.name = reinterpret_cast<decltype(c.name)>(::dlsym(handle, #name));                              \
    if (!c.name) return make_error(std::string("load ") + kCryptoSoname, "no symbol " #name " in it", ENOENT);
    KILN_LIBCRYPTO_FUNCTIONS(KILN_LIBCRYPTO_RESOLVE)
#undef KILN_LIBCRYPTO_RESOLVE
    return {};
}

Status resolve(void* handle, LibSsl& s) {
#define KILN_LIBSSL_RESOLVE(name)                                                                     \
    s.name = reinterpret_cast<decltype(s.name)>(::dlsym(handle, #name));                              \
    if (!s.name) return make_error(std::string("load ") + kSslSoname, "no symbol " #name " in it", ENOENT);
    KILN_LIBSSL_FUNCTIONS(KILN_LIBSSL_RESOLVE)
#undef KILN_LIBSSL_RESOLVE
    return {};
}

template <class Table>
Loaded<Table> open_library(const char* soname) {
    Loaded<Table> out;
    // Never closed: the functions are used until the process ends.
    void* handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* why = ::dlerror();
        out.status = make_error(std::string("load ") + soname, std::string(why ? why : "dlopen failed") +
                                                                   " (install OpenSSL 3: apt-get install libssl3)",
                                ENOENT);
        return out;
    }
    out.status = resolve(handle, out.functions);
    return out;
}

template <class Table>
const Table& functions_or_abort(const Loaded<Table>& l) {
    if (!l.status) {
        std::fprintf(stderr, "kiln: %s\n", l.status.error().what().c_str());
        std::abort();
    }
    return l.functions;
}

const Loaded<LibCrypto>& loaded() {
    static const Loaded<LibCrypto> once = open_library<LibCrypto>(kCryptoSoname);
    return once;
}

const Loaded<LibSsl>& loaded_ssl() {
    static const Loaded<LibSsl> once = open_library<LibSsl>(kSslSoname);
    return once;
}

}  // namespace

Status load() { return loaded().status; }
const LibCrypto& lib() { return functions_or_abort(loaded()); }

Status load_ssl() { return loaded_ssl().status; }
const LibSsl& ssl() { return functions_or_abort(loaded_ssl()); }

std::string last_error() {
    const LibCrypto& c = lib();
    unsigned long code = c.ERR_get_error();
    if (code == 0) return {};
    char text[256];
    c.ERR_error_string_n(code, text, sizeof text);
    c.ERR_clear_error();
    return text;
}

}  // namespace kiln::crypto
