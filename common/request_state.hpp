// The requestState of MCP 2026-07-28's multi round-trip requests: the
// server's memory of a request that needs the client's input, carried by
// the client and handed back on its retry. The client is untrusted, so the
// state is signed (HMAC-SHA256 with a server key) and bound to who asked,
// to what was asked (for an approval: the exact code's hash) and to an
// expiry; each state is accepted once. Any replica holding the same key can
// finish what another started.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/result.hpp"

namespace kiln {

// Why a presented state was refused: each one a different attack or accident.
enum class StateRefusal { Malformed, BadSignature, OtherPrincipal, OtherRequest, Expired, Replayed };
const char* to_string(StateRefusal r);

struct StateError {
    StateRefusal reason;
    std::string message;  // what the client reads: what was wrong and what to do
};

class RequestStateSigner {
public:
    using Clock = std::chrono::system_clock;
    static constexpr std::size_t kKeyBytes = 32;

    // The key in `path`, created (32 random bytes, mode 0600, exclusively so
    // that replicas starting together agree on one) when it does not exist.
    // A key file that group or others can read is refused.
    static Result<std::shared_ptr<RequestStateSigner>> from_key_file(const std::string& path);
    // A key drawn for this process alone: states only it can redeem.
    static std::shared_ptr<RequestStateSigner> ephemeral();
    explicit RequestStateSigner(std::string key, std::chrono::milliseconds ttl = std::chrono::minutes(10));

    // A state for `principal` asking `binding` (e.g. "tools/call run_code
    // sha256:<hex>"), valid for the signer's ttl from `now`.
    std::string mint(const std::string& principal, const std::string& binding, Clock::time_point now = Clock::now());

    // Accepts a state once: signed by this key, for this principal and this
    // binding, not expired, not seen before by this signer. nullopt: accepted.
    std::optional<StateError> redeem(const std::string& state, const std::string& principal,
                                    const std::string& binding, Clock::time_point now = Clock::now());

    std::chrono::milliseconds ttl() const { return ttl_; }

private:
    std::string sign(const std::string& payload) const;
    void forget_expired(std::int64_t now_ms);

    std::string key_;
    std::chrono::milliseconds ttl_;
    std::mutex mutex_;
    // Redeemed nonces with their expiry: a nonce older than its expiry is
    // refused as expired anyway, so the set stays bounded by the ttl.
    std::map<std::string, std::int64_t> used_;
};

}  // namespace kiln
