#include "server/httplib_loader.hpp"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace kiln::httplib_loader {
namespace {

// The soname of the library the stubs were generated from (Debian 12's
// libcpp-httplib0.11); another version has other symbols.
constexpr const char* kSoname = "libcpp-httplib.so.0.11";

Status open_and_bind() {
    // Never closed: the transport uses it until the process ends.
    void* handle = ::dlopen(kSoname, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* why = ::dlerror();
        return make_error(std::string("load ") + kSoname,
                          std::string(why ? why : "dlopen failed") + " (apt-get install libcpp-httplib0.11)", ENOENT);
    }
    for (unsigned long i = 0; i < kiln_httplib_count; ++i) {
        void* fn = ::dlsym(handle, kiln_httplib_names[i]);
        if (!fn)
            return make_error(std::string("load ") + kSoname,
                              std::string("no symbol ") + kiln_httplib_names[i] +
                                  " in it: Kiln was built against another cpp-httplib; rebuild it",
                              ENOENT);
        kiln_httplib_table[i] = fn;
    }
    return {};
}

}  // namespace

Status load() {
    static const Status once = open_and_bind();
    return once;
}

bool is_mapped() {
    std::ifstream maps("/proc/self/maps");
    for (std::string line; std::getline(maps, line);)
        if (line.find(kSoname) != std::string::npos) return true;
    return false;
}

}  // namespace kiln::httplib_loader

extern "C" void kiln_httplib_not_loaded() {
    std::fprintf(stderr, "kiln: an httplib function was called before kiln::httplib_loader::load() "
                         "(server/httplib_loader.hpp)\n");
    std::abort();
}
