#include "common/libcrypto.hpp"

#include <dlfcn.h>
#include <openssl/opensslv.h>

#include <cstdio>
#include <cstdlib>

namespace kiln::crypto {
namespace {

// The soname belongs to the major version the headers describe; a build
// against another major must not load a library with other signatures.
#if OPENSSL_VERSION_MAJOR != 3
#error "libcrypto.cpp loads libcrypto.so.3: update the soname for this OpenSSL major version"
#endif
constexpr const char* kSoname = "libcrypto.so.3";

struct Loaded {
    LibCrypto functions;
    Status status;
};

Status resolve(void* handle, LibCrypto& c) {
#define KILN_LIBCRYPTO_RESOLVE(name)                                                                  \
    c.name = reinterpret_cast<decltype(c.name)>(::dlsym(handle, #name));                              \
    if (!c.name) return make_error(std::string("load ") + kSoname, "no symbol " #name " in it", ENOENT);
    KILN_LIBCRYPTO_FUNCTIONS(KILN_LIBCRYPTO_RESOLVE)
#undef KILN_LIBCRYPTO_RESOLVE
    return {};
}

Loaded open_library() {
    Loaded out;
    // Never closed: the functions are used until the process ends.
    void* handle = ::dlopen(kSoname, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* why = ::dlerror();
        out.status = make_error(std::string("load ") + kSoname, std::string(why ? why : "dlopen failed") +
                                                                    " (install OpenSSL 3's libcrypto: apt-get install libssl3)",
                                ENOENT);
        return out;
    }
    out.status = resolve(handle, out.functions);
    return out;
}

const Loaded& loaded() {
    static const Loaded once = open_library();
    return once;
}

}  // namespace

Status load() { return loaded().status; }

const LibCrypto& lib() {
    const Loaded& l = loaded();
    if (!l.status) {
        std::fprintf(stderr, "kiln: %s\n", l.status.error().what().c_str());
        std::abort();
    }
    return l.functions;
}

}  // namespace kiln::crypto
