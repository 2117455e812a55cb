// The seccomp filters the server embeds are the ones libseccomp compiles
// from today's rules (seccomp_rules.hpp): a stale generated file, or a
// build that skipped the generator, fails here.
#include <cstring>

#include "sandbox/seccomp_rules.hpp"
#include "tests/sandbox/harness.hpp"

using namespace kiln::sandbox;

namespace {

bool same(const std::vector<sock_filter>& fresh, const sock_filter* embedded, std::size_t length) {
    return fresh.size() == length && std::memcmp(fresh.data(), embedded, length * sizeof(sock_filter)) == 0;
}

}  // namespace

TEST_CASE("the embedded seccomp filters are what libseccomp compiles from the rules now") {
    auto base = seccomp::compile_rules(seccomp::Filter::Base);
    REQUIRE(base.ok());
    CHECK(same(*base, seccomp::kBaseFilter, seccomp::kBaseFilterLength));
    auto no_new_process = seccomp::compile_rules(seccomp::Filter::NoNewProcess);
    REQUIRE(no_new_process.ok());
    CHECK(same(*no_new_process, seccomp::kNoNewProcessFilter, seccomp::kNoNewProcessFilterLength));
    CHECK(seccomp::kBaseFilterLength > 100);  // the deny list, not an empty program
}
