// A process the kill -9 test can kill mid-burst.
//   audit_crash_driver append PATH COUNT PAD  appends COUNT records (fsync
//       always) of PAD bytes each, printing "SEQ I" once each append returns
//   audit_crash_driver verify PATH            prints the verifier's verdict
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "security/audit/audit_log.hpp"
#include "security/audit/verify.hpp"

namespace {

int append(const std::string& path, long count, std::size_t pad) {
    kiln::AuditConfig cfg;
    cfg.path = path;
    cfg.fsync = "always";
    auto log = kiln::audit::AuditLog::open(cfg);
    if (!log) {
        std::cerr << log.error().what() << "\n";
        return 1;
    }
    const std::string padding(pad, 'p');
    for (long i = 0; i < count; ++i) {
        auto ref = (*log)->append("execution", {{"pid", ::getpid()}, {"i", i}, {"output", padding}});
        if (!ref) {
            std::cerr << ref.error().what() << "\n";
            return 1;
        }
        // One write(2) per acknowledgement so a kill never splits it.
        std::string ack = std::to_string(ref->seq) + " " + std::to_string(i) + "\n";
        if (::write(1, ack.data(), ack.size()) != static_cast<ssize_t>(ack.size())) return 1;
    }
    return 0;
}

int verify(const std::string& path) {
    auto r = kiln::audit::verify_chain({path}, {});
    if (!r) {
        std::cerr << r.error().what() << "\n";
        return 1;
    }
    std::cout << (r->intact ? "intact " : "broken ") << r->records << " line " << r->line << " " << r->problem << "\n";
    return r->intact ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "append" && argc == 5) return append(argv[2], std::atol(argv[3]), std::strtoul(argv[4], nullptr, 10));
    if (mode == "verify" && argc == 3) return verify(argv[2]);
    std::cerr << "usage: audit_crash_driver append PATH COUNT PAD | verify PATH\n";
    return 64;
}
