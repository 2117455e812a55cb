#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/request_state.hpp"
#include "common/text.hpp"

using namespace kiln;
using namespace std::chrono_literals;

namespace {

const std::string kKey(32, 'k');
const std::string kCode = "tools/call run_code python sha256:aaaa";

std::optional<StateRefusal> refusal(RequestStateSigner& s, const std::string& state, const std::string& who = "alice",
                                    const std::string& binding = kCode,
                                    RequestStateSigner::Clock::time_point now = RequestStateSigner::Clock::now()) {
    auto r = s.redeem(state, who, binding, now);
    return r ? std::optional(r->reason) : std::nullopt;
}

// The state with one byte of its signed payload changed and re-encoded, the
// signature kept: what a client that edits the state produces.
std::string with_payload_byte_flipped(const std::string& state) {
    auto dot1 = state.find('.');
    auto dot2 = state.find('.', dot1 + 1);
    auto payload = base64url_decode(state.substr(dot1 + 1, dot2 - dot1 - 1));
    REQUIRE(payload);
    (*payload)[payload->find("alice")] ^= 0x01;
    return state.substr(0, dot1 + 1) + base64url_encode(*payload) + state.substr(dot2);
}

}  // namespace

TEST_CASE("requestState: minted for a principal and code, redeemed once") {
    RequestStateSigner s(kKey);
    std::string state = s.mint("alice", kCode);
    CHECK_FALSE(refusal(s, state));
    CHECK(refusal(s, state) == StateRefusal::Replayed);
}

TEST_CASE("requestState: tampering, another principal, other code, expiry and another key are refused") {
    RequestStateSigner s(kKey, 60s);
    std::string state = s.mint("alice", kCode);
    CHECK(refusal(s, with_payload_byte_flipped(state)) == StateRefusal::BadSignature);
    // A character inside the signature (the last one also holds padding
    // bits, which a change may leave out of the decoded bytes).
    std::string bad_mac = state;
    char& c = bad_mac[bad_mac.size() - 10];
    c = c == 'A' ? 'B' : 'A';
    CHECK(refusal(s, bad_mac) == StateRefusal::BadSignature);
    CHECK(refusal(s, "ks1.e30.AAAA") == StateRefusal::BadSignature);
    CHECK(refusal(s, "not a state") == StateRefusal::Malformed);
    CHECK(refusal(s, state, "mallory") == StateRefusal::OtherPrincipal);
    CHECK(refusal(s, state, "alice", "tools/call run_code python sha256:bbbb") == StateRefusal::OtherRequest);
    CHECK(refusal(s, state, "alice", kCode, RequestStateSigner::Clock::now() + 61s) == StateRefusal::Expired);
    RequestStateSigner other(std::string(32, 'x'));
    CHECK(refusal(other, state) == StateRefusal::BadSignature);
    // None of the refusals used it up: the genuine retry still counts.
    CHECK_FALSE(refusal(s, state));
}

TEST_CASE("requestState: a signer without a key refuses everything") {
    RequestStateSigner s("");
    CHECK(refusal(s, s.mint("alice", kCode)) == StateRefusal::BadSignature);
}

TEST_CASE("requestState: the key file is made 0600 once and shared by every signer that loads it") {
    auto dir = std::filesystem::temp_directory_path() / ("kiln-rs-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::string path = (dir / "request-state.key").string();
    auto a = RequestStateSigner::from_key_file(path);
    REQUIRE(a);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(st.st_size == 32);
    // A second replica loads the same key and finishes what the first began.
    auto b = RequestStateSigner::from_key_file(path);
    REQUIRE(b);
    CHECK_FALSE(refusal(**b, (*a)->mint("alice", kCode)));
    ::chmod(path.c_str(), 0644);
    auto loose = RequestStateSigner::from_key_file(path);
    REQUIRE_FALSE(loose);
    CHECK(loose.error().what().find("chmod 600") != std::string::npos);
    std::ofstream(path, std::ios::trunc) << "short";
    ::chmod(path.c_str(), 0600);
    auto short_key = RequestStateSigner::from_key_file(path);
    REQUIRE_FALSE(short_key);
    CHECK(short_key.error().what().find("fewer than 32") != std::string::npos);
    std::filesystem::remove_all(dir);
}
