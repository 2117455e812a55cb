#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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

namespace {

struct LedgerDir {
    std::string path =
        (std::filesystem::temp_directory_path() / ("kiln-rs-ledger-" + std::to_string(::getpid()))).string();
    LedgerDir() { std::filesystem::remove_all(path); }
    ~LedgerDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("requestState: two signers sharing a ledger dir accept each state once between them") {
    LedgerDir dir;
    RequestStateSigner a(kKey), b(kKey);
    REQUIRE(a.record_redeemed_in(dir.path));
    REQUIRE(b.record_redeemed_in(dir.path));
    std::string state = a.mint("alice", kCode);
    CHECK_FALSE(refusal(a, state));
    // Another replica (same key) is where a replay would land.
    CHECK(refusal(b, state) == StateRefusal::Replayed);
    CHECK(refusal(a, state) == StateRefusal::Replayed);
    // Without a shared ledger each signer would have accepted it once more.
    RequestStateSigner c(kKey);
    CHECK_FALSE(refusal(c, state));
}

TEST_CASE("requestState: two processes redeeming the same states through one ledger: exactly one wins each") {
    LedgerDir dir;
    RequestStateSigner minter(kKey);
    constexpr int kStates = 64;
    std::vector<std::string> states;
    for (int i = 0; i < kStates; ++i) states.push_back(minter.mint("alice", kCode));
    int go[2], results[2][2];
    REQUIRE(::pipe(go) == 0);
    pid_t pids[2];
    for (int k = 0; k < 2; ++k) {
        REQUIRE(::pipe(results[k]) == 0);
        pids[k] = ::fork();
        REQUIRE(pids[k] >= 0);
        if (pids[k] == 0) {
            // Each child is a replica: its own signer, the shared dir; both
            // start together so that their O_EXCL creations race.
            RequestStateSigner mine(kKey);
            if (!mine.record_redeemed_in(dir.path)) ::_exit(2);
            char c;
            if (::read(go[0], &c, 1) != 1) ::_exit(3);
            std::string wins(kStates, '0');
            for (int i = 0; i < kStates; ++i) {
                auto r = mine.redeem(states[i], "alice", kCode);
                if (!r) wins[i] = '1';
                else if (r->reason != StateRefusal::Replayed) wins[i] = 'x';
            }
            ssize_t w = ::write(results[k][1], wins.data(), wins.size());
            ::_exit(w == kStates ? 0 : 4);
        }
        ::close(results[k][1]);
    }
    ::close(go[0]);
    REQUIRE(::write(go[1], "gg", 2) == 2);
    ::close(go[1]);
    std::string got[2];
    for (int k = 0; k < 2; ++k) {
        got[k].resize(kStates);
        REQUIRE(::read(results[k][0], got[k].data(), kStates) == kStates);
        ::close(results[k][0]);
        int status = 0;
        REQUIRE(::waitpid(pids[k], &status, 0) == pids[k]);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    for (int i = 0; i < kStates; ++i) {
        INFO("state " << i << ": " << got[0][i] << got[1][i]);
        CHECK((got[0][i] == '1') != (got[1][i] == '1'));
        CHECK(got[0][i] != 'x');
        CHECK(got[1][i] != 'x');
    }
}

TEST_CASE("requestState: the ledger is swept after expiry, and a ledger that cannot be written refuses") {
    LedgerDir dir;
    RequestStateSigner s(kKey, 60s);
    REQUIRE(s.record_redeemed_in(dir.path));
    const auto long_ago = RequestStateSigner::Clock::now() - 1h;
    std::string old_state = s.mint("alice", kCode, long_ago);
    CHECK_FALSE(refusal(s, old_state, "alice", kCode, long_ago));
    auto files = [&] {
        return std::distance(std::filesystem::directory_iterator(dir.path), std::filesystem::directory_iterator{});
    };
    CHECK(files() == 1);
    // A redemption an hour later sweeps the expired record and keeps its own.
    CHECK_FALSE(refusal(s, s.mint("alice", kCode)));
    CHECK(files() == 1);
    // The ledger gone from under a running replica (an unmounted share):
    // fail closed, the state is not accepted.
    RequestStateSigner t(kKey);
    REQUIRE(t.record_redeemed_in(dir.path));
    std::filesystem::remove_all(dir.path);
    auto r = t.redeem(t.mint("alice", kCode), "alice", kCode);
    REQUIRE(r);
    CHECK(r->reason == StateRefusal::Unrecorded);
    CHECK(r->message.find(dir.path) != std::string::npos);
    std::filesystem::create_directories(dir.path + "/x");
    auto made = RequestStateSigner(kKey).record_redeemed_in(dir.path + "/x/y/z");
    CHECK_FALSE(made);
}
