#include "common/request_state.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/libcrypto.hpp"
#include "common/secret_file.hpp"
#include "common/text.hpp"
#include "common/unique_fd.hpp"

namespace kiln {

using nlohmann::json;

const char* to_string(StateRefusal r) {
    switch (r) {
        case StateRefusal::Malformed: return "malformed";
        case StateRefusal::BadSignature: return "bad_signature";
        case StateRefusal::OtherPrincipal: return "other_principal";
        case StateRefusal::OtherRequest: return "other_request";
        case StateRefusal::Expired: return "expired";
        case StateRefusal::Replayed: return "replayed";
        case StateRefusal::Unrecorded: return "unrecorded";
    }
    return "malformed";
}

namespace {

Result<std::string> random_bytes(std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
        ssize_t r = ::getrandom(out.data() + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return sys_error("getrandom", "cannot draw random bytes for a request-state key or nonce");
        }
        got += static_cast<std::size_t>(r);
    }
    return out;
}

// O_EXCL: of two replicas starting on one shared state directory, one
// writes the key and the other reads it (after the writer's fsync).
Status create_key_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) return errno == EEXIST ? Status{} : sys_error("create request-state key " + path);
    auto key = random_bytes(RequestStateSigner::kKeyBytes);
    if (!key) return key.error();
    if (::write(fd.get(), key->data(), key->size()) != static_cast<ssize_t>(key->size()) || ::fsync(fd.get()) != 0) {
        Error e = sys_error("write request-state key " + path);
        ::unlink(path.c_str());
        return e;
    }
    return {};
}

std::int64_t to_ms(RequestStateSigner::Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// A ledger file outlives its state's expiry by this much before a sweep
// removes it, so that a replica whose clock runs behind the sweeper's (and
// so still accepts the state) finds it redeemed: replicas' clocks must
// agree within this.
constexpr std::int64_t kLedgerGraceMs = 5 * 60 * 1000;
constexpr std::int64_t kSweepEveryMs = 60 * 1000;

// The nonce names a file: only what base64url_encode makes of 16 bytes.
bool is_nonce(const std::string& n) {
    if (n.empty() || n.size() > 64) return false;
    for (char c : n)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
    return true;
}

bool same_bytes(const std::string& a, const std::string& b) {
    return a.size() == b.size() && crypto::lib().CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

Result<std::shared_ptr<RequestStateSigner>> RequestStateSigner::from_key_file(const std::string& path) {
    if (Status st = create_key_file(path); !st) return st.error();
    auto key = read_secret_file(path, "request-state key");
    if (!key) return key.error();
    if (key->size() < kKeyBytes)
        return make_error("load request-state key " + path,
                          "the key has " + std::to_string(key->size()) + " bytes, fewer than " +
                              std::to_string(kKeyBytes) + "; remove the file to have a new one made");
    return std::make_shared<RequestStateSigner>(std::move(*key));
}

std::shared_ptr<RequestStateSigner> RequestStateSigner::ephemeral() {
    auto key = random_bytes(kKeyBytes);
    // Without randomness there is no key, and redeem() refuses every state
    // (every approval is asked again) rather than trust a guessable one.
    return std::make_shared<RequestStateSigner>(key ? *key : std::string());
}

RequestStateSigner::RequestStateSigner(std::string key, std::chrono::milliseconds ttl) : key_(std::move(key)), ttl_(ttl) {}

std::string RequestStateSigner::sign(const std::string& payload) const {
    unsigned char mac[32];
    unsigned int len = 0;
    crypto::lib().HMAC(crypto::lib().EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
                       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac, &len);
    return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string RequestStateSigner::mint(const std::string& principal, const std::string& binding, Clock::time_point now) {
    auto nonce = random_bytes(16);
    json payload = {{"v", 1},
                    {"p", principal},
                    {"b", binding},
                    {"exp", to_ms(now) + ttl_.count()},
                    {"n", base64url_encode(nonce ? *nonce : std::string())}};
    std::string text = payload.dump();
    return "ks1." + base64url_encode(text) + "." + base64url_encode(sign(text));
}

std::optional<StateError> RequestStateSigner::redeem(const std::string& state, const std::string& principal,
                                                     const std::string& binding, Clock::time_point now) {
    auto malformed = [] {
        return StateError{StateRefusal::Malformed, "requestState is not one this server issued; retry the call "
                                                   "without requestState to be asked again"};
    };
    auto dot1 = state.find('.');
    auto dot2 = dot1 == std::string::npos ? dot1 : state.find('.', dot1 + 1);
    if (state.rfind("ks1.", 0) != 0 || dot2 == std::string::npos) return malformed();
    auto text = base64url_decode(state.substr(dot1 + 1, dot2 - dot1 - 1));
    auto mac = base64url_decode(state.substr(dot2 + 1));
    if (!text || !mac) return malformed();
    // The signature first: nothing of an unsigned payload is believed.
    if (key_.size() < kKeyBytes || !same_bytes(*mac, sign(*text)))
        return StateError{StateRefusal::BadSignature, "requestState failed verification (altered, or signed with "
                                                      "another key); retry the call without requestState"};
    json p = json::parse(*text, nullptr, false);
    if (!p.is_object() || !p["p"].is_string() || !p["b"].is_string() || !p["exp"].is_number_integer() ||
        !p["n"].is_string())
        return malformed();
    if (p["p"].get<std::string>() != principal)
        return StateError{StateRefusal::OtherPrincipal, "requestState was issued to another principal"};
    if (p["b"].get<std::string>() != binding)
        return StateError{StateRefusal::OtherRequest,
                          "requestState belongs to another request (other tool or other code); retry the original "
                          "call unchanged, or start again without requestState"};
    const std::int64_t exp = p["exp"].get<std::int64_t>();
    const std::int64_t now_ms = to_ms(now);
    if (now_ms >= exp)
        return StateError{StateRefusal::Expired, "requestState expired (it is valid for " +
                                                     std::to_string(ttl_.count() / 1000) +
                                                     " s); retry the call without requestState to be asked again"};
    return use_nonce(p["n"].get<std::string>(), exp, now_ms);
}

Status RequestStateSigner::record_redeemed_in(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        return sys_error("mkdir " + dir, "cannot make the directory of redeemed requestStates");
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return sys_error("stat " + dir);
    if (!S_ISDIR(st.st_mode)) return make_error("use " + dir, "the ledger of redeemed requestStates is not a directory");
    std::lock_guard lock(mutex_);
    ledger_dir_ = dir;
    return {};
}

namespace {
const char* const kReplayed =
    "requestState was already used; each answer counts once, retry the call without requestState to be asked again";
}  // namespace

std::optional<StateError> RequestStateSigner::use_nonce(const std::string& nonce, std::int64_t exp,
                                                        std::int64_t now_ms) {
    std::lock_guard lock(mutex_);
    if (!ledger_dir_.empty()) return use_nonce_in_ledger(nonce, exp, now_ms);
    forget_expired(now_ms);
    if (!used_.emplace(nonce, exp).second) return StateError{StateRefusal::Replayed, kReplayed};
    return std::nullopt;
}

// O_CREAT|O_EXCL is the one step that decides: of all processes on all
// machines creating the same name, exactly one succeeds (NFSv3+ does this
// on the server). The name carries the signed expiry so a sweep needs no read.
std::optional<StateError> RequestStateSigner::use_nonce_in_ledger(const std::string& nonce, std::int64_t exp,
                                                                  std::int64_t now_ms) {
    sweep_ledger(now_ms);
    if (!is_nonce(nonce)) return StateError{StateRefusal::Malformed, "requestState carries no usable nonce"};
    const std::string path = ledger_dir_ + "/" + std::to_string(exp) + "." + nonce;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd) return std::nullopt;
    if (errno == EEXIST) return StateError{StateRefusal::Replayed, kReplayed};
    // Fail closed: a state that cannot be recorded as used could be used again.
    return StateError{StateRefusal::Unrecorded,
                      "requestState cannot be recorded as used (" + std::string(std::strerror(errno)) + " on " +
                          ledger_dir_ + "), so it is not accepted; retry later"};
}

// At most once a minute per process; any replica may remove any replica's
// expired files (removing one twice is harmless).
void RequestStateSigner::sweep_ledger(std::int64_t now_ms) {
    if (now_ms < next_sweep_ms_) return;
    next_sweep_ms_ = now_ms + kSweepEveryMs;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(ledger_dir_, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        char* stop = nullptr;
        const long long exp = std::strtoll(name.c_str(), &stop, 10);
        if (stop == name.c_str() || *stop != '.') continue;
        if (exp + kLedgerGraceMs <= now_ms) ::unlink(it->path().c_str());
    }
}

void RequestStateSigner::forget_expired(std::int64_t now_ms) {
    for (auto it = used_.begin(); it != used_.end();) it = it->second <= now_ms ? used_.erase(it) : std::next(it);
}

}  // namespace kiln
