#include "common/request_state.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>

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
    std::lock_guard lock(mutex_);
    forget_expired(now_ms);
    if (!used_.emplace(p["n"].get<std::string>(), exp).second)
        return StateError{StateRefusal::Replayed, "requestState was already used; each answer counts once, retry "
                                                  "the call without requestState to be asked again"};
    return std::nullopt;
}

void RequestStateSigner::forget_expired(std::int64_t now_ms) {
    for (auto it = used_.begin(); it != used_.end();) it = it->second <= now_ms ? used_.erase(it) : std::next(it);
}

}  // namespace kiln
