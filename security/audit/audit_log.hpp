// The tamper-evident audit log (control C011).
//
// One JSON object per line, appended with O_APPEND. Every record carries a
// monotonic `seq`, an RFC 3339 UTC timestamp with microseconds, the hash of
// the previous record and its own hash: SHA-256 over the previous hash and
// the record's canonical bytes (see record.hpp). An optional HMAC key makes
// the chain unforgeable by someone who can write the file but not read the
// key. The record schema callers fill is documented in docs/audit.md.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/config.hpp"
#include "common/result.hpp"

namespace kiln::audit {

// What an agent is handed so a reviewer can find the record: `id` is
// "<seq>-<first 12 hex digits of the record's hash>", unique across logs
// and checkable against the record (`kiln audit show --id ID`).
struct AuditRef {
    std::uint64_t seq = 0;
    std::string id;
};

// Counters for metrics and the benchmark.
struct AuditStats {
    std::uint64_t records = 0;         // appended by this process
    std::uint64_t syncs = 0;           // fdatasync calls made
    std::uint64_t write_failures = 0;  // appends that returned an error
};

class AuditLog {
public:
    // Creates the directory (0700) and file (0600) if needed, loads the
    // HMAC and seal keys, and, holding the file's lock for that moment,
    // cuts a torn last line left by a crash (recording a `recovery` event)
    // and finds the chain head (in the newest rotated file when the active
    // file is empty), then allocates cfg.reserve_bytes past the file's end
    // (on a disk already too full for that the log opens unhealthy). Other
    // processes may have the same log open: each append takes the lock only
    // while it writes and first catches up with what the others appended or
    // rotated (docs/audit.md).
    static Result<std::unique_ptr<AuditLog>> open(const AuditConfig& cfg);

    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;
    // Syncs a pending batch and stops the batch flusher.
    ~AuditLog();

    // Thread-safe. `fields` must be an object (or null) and must not set
    // seq, ts, prev_hash, hash or hmac. A string `code` field is replaced by
    // code_sha256 (of the original), the redacted and capped code (or
    // code_sealed when a seal key is configured), code_bytes,
    // code_truncated and code_redactions. Returns once the record is durable
    // as cfg.fsync asks: always = fdatasync'd; batch = written, synced within
    // batch_interval or batch_records; never = written. A failed write leaves
    // no partial line, consumes no seq and makes healthy() false until a
    // later append succeeds.
    Result<AuditRef> append(std::string_view event, nlohmann::json fields);

    // False after a write or sync failure, and while the reserve past the
    // file's end cannot be renewed (the disk is full: the log still records
    // into what is reserved, but cannot promise room for a new run). With
    // on_failure=fail_closed the tools layer refuses executions while this
    // is false (C011 not in force). While the reserve is low each call
    // tries to renew it, so the log turns healthy as soon as space returns.
    bool healthy() const;
    // False when audit.path's filesystem cannot allocate ahead (no
    // fallocate): the log runs, but a disk fill can stop it recording.
    bool reserve_in_force() const;
    std::string last_error() const;
    // The log file's descriptor, opened O_CLOEXEC so it never reaches a jail.
    // It changes when this or another process rotates the file.
    int fd() const;
    // Path of the active file.
    const std::string& path() const;
    AuditStats stats() const;

    class Impl;

private:
    explicit AuditLog(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::audit
