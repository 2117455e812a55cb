// The requestState of MCP 2026-07-28's multi round-trip requests: the
// server's memory of a request that needs the client's input, carried by
// the client and handed back on its retry. The client is untrusted, so the
// state is signed (HMAC-SHA256 with a server key) and bound to who asked,
// to what was asked (for an approval: the exact code's hash) and to an
// expiry; each state is accepted once. Any replica holding the same key can
// finish what another started; with a ledger directory they all share
// (record_redeemed_in), "once" holds across replicas too.
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
enum class StateRefusal { Malformed, BadSignature, OtherPrincipal, OtherRequest, Expired, Replayed, Unrecorded };
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

    // Records redeemed nonces as files in `dir` (made 0700 if missing), one
    // O_CREAT|O_EXCL file per nonce, instead of in this process's memory:
    // every signer using the same dir accepts a state once between them.
    // For `workspace.store: shared`, where `dir` is on the shared filesystem.
    Status record_redeemed_in(const std::string& dir);

    // A state for `principal` asking `binding` (e.g. "tools/call run_code
    // sha256:<hex>"), valid for the signer's ttl from `now`.
    std::string mint(const std::string& principal, const std::string& binding, Clock::time_point now = Clock::now());

    // Accepts a state once: signed by this key, for this principal and this
    // binding, not expired, not seen before by this signer (or, with a
    // ledger dir, by any signer sharing it). nullopt: accepted.
    std::optional<StateError> redeem(const std::string& state, const std::string& principal,
                                    const std::string& binding, Clock::time_point now = Clock::now());

    std::chrono::milliseconds ttl() const { return ttl_; }

private:
    std::string sign(const std::string& payload) const;
    void forget_expired(std::int64_t now_ms);
    std::optional<StateError> use_nonce(const std::string& nonce, std::int64_t exp, std::int64_t now_ms);
    std::optional<StateError> use_nonce_in_ledger(const std::string& nonce, std::int64_t exp, std::int64_t now_ms);
    void sweep_ledger(std::int64_t now_ms);

    std::string key_;
    std::chrono::milliseconds ttl_;
    std::mutex mutex_;
    // Redeemed nonces with their expiry: a nonce older than its expiry is
    // refused as expired anyway, so the set stays bounded by the ttl.
    std::map<std::string, std::int64_t> used_;
    std::string ledger_dir_;  // "" : used_ is the record
    std::int64_t next_sweep_ms_ = 0;
};

}  // namespace kiln
