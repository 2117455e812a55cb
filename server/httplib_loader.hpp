// cpp-httplib, loaded when the HTTP transport starts rather than when any
// kiln process starts (server/httplib_stubs.py says why and how).
//
// Code that uses httplib includes <httplib.h> as usual and depends on
// httplib_lazy_dep instead of httplib_dep; it calls load() before the
// first httplib call (kiln serve, when the transport is http). A call
// before that aborts with a message naming this file; TLS needs nothing
// more, libssl comes with the library.
#pragma once

#include "common/result.hpp"

namespace kiln::httplib_loader {

// Loads libcpp-httplib.so.0.11 (and its libssl, libcrypto, zlib, brotli)
// once; later calls return the first outcome.
Status load();

// Whether the library is mapped into this process now (from
// /proc/self/maps), for tests and `kiln selftest`.
bool is_mapped();

}  // namespace kiln::httplib_loader

extern "C" {
// What every stub jumps to until load() succeeds.
[[noreturn]] __attribute__((visibility("hidden"))) void kiln_httplib_not_loaded();
extern const unsigned long kiln_httplib_count;
extern const char* const kiln_httplib_names[];
extern void* kiln_httplib_table[];
}
