#include "security/audit/audit_log.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "common/hash.hpp"
#include "common/kiln_metrics.hpp"
#include "common/unique_fd.hpp"
#include "security/audit/files.hpp"
#include "security/audit/record.hpp"
#include "security/audit/redact.hpp"
#include "security/audit/seal.hpp"

namespace kiln::audit {
namespace {

enum class Durability { kAlways, kBatch, kNever };

// The space kept allocated past the end of the active file (docs/audit.md,
// "Disk full").
enum class ReserveState {
    kInForce,      // cfg.reserve_bytes are allocated past the end
    kLow,          // could not be renewed: the log is unhealthy and writes into what is left
    kUnsupported,  // the filesystem has no fallocate; the log runs without a reserve
};
// What a renewal changed, for the `reserve` record that tells a reviewer.
enum class ReserveChange { kNone, kExhausted, kRenewed, kUnavailable };

Result<Durability> parse_durability(const std::string& text) {
    if (text == "always") return Durability::kAlways;
    if (text == "batch") return Durability::kBatch;
    if (text == "never") return Durability::kNever;
    return make_error("open audit log", "audit.fsync is '" + text + "'; use always, batch or never");
}

// Fields the log itself owns; a caller setting them would break the chain.
constexpr std::array<std::string_view, 6> kReservedFields{"seq", "ts", "event", "prev_hash", "hash", "hmac"};

// Cuts `text` to at most `max` bytes without splitting a UTF-8 sequence.
std::string cap_utf8(std::string text, std::size_t max) {
    if (text.size() <= max) return text;
    std::size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text.resize(cut);
    return text;
}

// Parent directories are created 0700: the log and its neighbours (keys,
// workspaces) are nobody else's business. Existing directories are left as
// the operator made them.
Status make_parent_dirs(const std::string& path) {
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (parent.empty()) return {};
    std::string partial;
    for (const auto& part : parent) {
        partial = partial.empty() || partial == "/" ? partial + part.string() : partial + "/" + part.string();
        if (partial.empty() || partial == "/") continue;
        if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST)
            return sys_error("create audit log directory " + partial, "check that the parent of audit.path is writable");
    }
    return {};
}

// The file is created 0600 and opened O_CLOEXEC so it never reaches a
// jail. O_RDWR because the tail is read back (pread) to catch up with other
// writers and to cut a torn line.
Result<UniqueFd> open_log(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) return sys_error("open audit log " + path, "check audit.path and its permissions");
    return fd;
}

// Blocks: the lock is held only for the write of one record (and, rarely,
// a rotation), so a writer waits at most for the other writers' writes.
Status lock_exclusive(int fd, const std::string& path) {
    while (::flock(fd, LOCK_EX) != 0)
        if (errno != EINTR) return sys_error("lock audit log " + path, "audit.path must be on a filesystem with flock(2)");
    return {};
}

bool same_file(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

Status sync_dir(const std::string& path) {
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    UniqueFd dir(::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir || ::fsync(dir.get()) != 0) return sys_error("sync audit log directory " + parent.string());
    return {};
}

struct ChainHead {
    std::uint64_t seq = 0;
    std::string hash = kGenesisHash;
};

Result<ChainHead> parse_head(const std::string& line, const std::string& file) {
    ChainHead head;
    auto record = nlohmann::json::parse(line, nullptr, false);
    if (!record.is_object() || !record["seq"].is_number_unsigned() || !record["hash"].is_string() ||
        record["hash"].get<std::string>().size() != 64)
        return make_error("continue audit chain from " + file,
                          "the last line is not an audit record; run 'kiln audit verify " + file +
                              "', then move the file aside to start a new chain");
    head.seq = record["seq"].get<std::uint64_t>();
    head.hash = record["hash"].get<std::string>();
    return head;
}

// The chain continues from the newest rotated file when the active one is
// empty (a rotation happened just before a restart).
Result<ChainHead> head_of_rotated(const std::string& path) {
    auto rotated = rotated_files(path);
    if (rotated.empty()) return ChainHead{};
    UniqueFd fd(::open(rotated.back().c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return sys_error("open rotated audit log " + rotated.back());
    auto tail = read_tail(fd.get());
    if (!tail) return std::move(tail).error().wrap("continue audit chain from " + rotated.back());
    if (tail->last_line.empty()) return ChainHead{};
    return parse_head(tail->last_line, rotated.back());
}

// A line without its newline is a write the crash interrupted. Its append
// never returned, so nothing acknowledged is lost by cutting it; the
// recovery event (null when there is nothing to cut) keeps its size and
// hash for the reviewer.
Result<nlohmann::json> cut_torn_tail(int fd, const Tail& tail, const std::string& path) {
    if (tail.size == tail.complete_size) return nlohmann::json();
    std::string torn(tail.size - tail.complete_size, '\0');
    if (::pread(fd, torn.data(), torn.size(), static_cast<off_t>(tail.complete_size)) != static_cast<ssize_t>(torn.size()))
        return sys_error("read torn audit record in " + path);
    if (::ftruncate(fd, static_cast<off_t>(tail.complete_size)) != 0 || ::fdatasync(fd) != 0)
        return sys_error("cut torn audit record in " + path);
    return nlohmann::json{{"reason", "torn last line after a crash"},
                          {"torn_offset", tail.complete_size},
                          {"torn_bytes", torn.size()},
                          {"torn_sha256", sha256_hex(torn)},
                          {"torn_prefix", cap_utf8(torn, 200)}};
}

// fallocate(2) with KEEP_SIZE: the blocks become the file's while its size,
// which is all readers and `kiln audit verify` look at, stays the same.
// Returns 0 or the errno.
int allocate_past_end(int fd, std::uint64_t from, std::uint64_t len) {
    while (::fallocate(fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(from), static_cast<off_t>(len)) != 0)
        if (errno != EINTR) return errno;
    return 0;
}

// Filesystems without fallocate (ramfs, some network and FUSE filesystems)
// say so with these; anything else (ENOSPC, EDQUOT, EIO) is a reserve that
// could not be made.
bool allocation_unsupported(int err) { return err == EOPNOTSUPP || err == ENOSYS; }

// Gives the reserve of a file rotated away back to the filesystem. ext4
// ignores a hole punched past the end of a file but frees those blocks on a
// truncate to the same size, and so does tmpfs (both measured on Linux
// 6.18); the punch is for filesystems that only honour that.
void release_reserve(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return;
    (void)::ftruncate(fd, st.st_size);
    (void)::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, st.st_size,
                      static_cast<off_t>(kMaxAuditReserveBytes));
}

}  // namespace

// Several processes (two editors each starting `kiln serve` on the same
// state directory) may append to one chain. They take turns: a writer holds
// an exclusive flock on the active file only while it writes one record
// (and, rarely, rotates), and before writing it catches up with whatever
// the others appended since it last held the lock. fdatasync runs outside
// the lock; it covers every byte written to the file before it, whoever
// wrote them.
class AuditLog::Impl {
public:
    AuditConfig cfg;
    Durability mode = Durability::kAlways;
    std::string hmac_key;
    std::string seal_key;

    mutable std::mutex mu;
    // The file this process last locked. After another process rotated it,
    // it stays here until the next append notices; shared so a sync in
    // flight survives the switch.
    std::shared_ptr<UniqueFd> file;
    bool locked = false;              // this process holds the flock on `file`
    dev_t known_dev = 0;              // identity and size of `file` as this
    ino_t known_ino = 0;              // process left it; anything else means
    std::uint64_t file_size = 0;      // another writer has been there
    std::uint64_t partial_size = 0;   // a failed write left bytes up to here that ftruncate could not cut
    std::uint64_t next_seq = 1;
    std::string prev_hash = kGenesisHash;
    // Progress of this process's own records. Seqs are global (other
    // processes take seqs in between), so batch sizes are counted apart.
    std::uint64_t written_seq = 0;
    std::uint64_t durable_seq = 0;
    std::uint64_t written_count = 0;
    std::uint64_t durable_count = 0;
    std::uint64_t lost_after = 0;     // own records in (lost_after, lost_through] were in a
    std::uint64_t lost_through = 0;   // file whose sync failed when it was left behind
    bool syncing = false;
    std::condition_variable synced_cv;
    bool healthy = true;
    std::string last_error;
    AuditStats stats;
    ReserveState reserve_state = ReserveState::kInForce;
    std::uint64_t reserved_end = 0;   // `file` is allocated up to here as far as this process knows
    Error reserve_error;              // why the reserve is low or unsupported

    std::condition_variable flush_cv;
    bool stopping = false;
    std::thread flusher;

    struct PreparedCode {
        std::string text;
        nlohmann::json meta;  // code_sha256, code_bytes, code_truncated, code_redactions
    };
    Status load_keys();
    PreparedCode prepare_code(const std::string& code) const;
    Result<std::string> seal_line(nlohmann::json& record, const PreparedCode* code);
    Status lock_current();
    void unlock_file();
    Status switch_to_current_file();
    Result<nlohmann::json> catch_up(const struct stat& st);
    Result<AuditRef> append_locked(nlohmann::json& record, const PreparedCode* code);
    Result<AuditRef> commit_line(const nlohmann::json& record, const std::string& line);
    Status write_line(const std::string& line);
    ReserveChange renew_reserve();
    ReserveChange reserve_failed(int err);
    nlohmann::json reserve_record(ReserveChange change) const;
    Status keep_reserve();
    void retry_reserve();
    void note_write_succeeded();
    bool rotation_due(std::size_t line_size) const;
    Status rotate();
    Status sync_through(std::uint64_t seq);
    Status make_durable(std::uint64_t seq, bool batch_full);
    void flusher_loop();
    void set_failure(const Error& e);
    void set_healthy();
};

// Releases the file lock on scope exit, so no early return keeps the other
// writers waiting.
class FileUnlock {
public:
    explicit FileUnlock(AuditLog::Impl& impl) : impl_(impl) {}
    FileUnlock(const FileUnlock&) = delete;
    FileUnlock& operator=(const FileUnlock&) = delete;
    ~FileUnlock() { impl_.unlock_file(); }

private:
    AuditLog::Impl& impl_;
};

Status AuditLog::Impl::load_keys() {
    if (!cfg.hmac_key_file.empty()) {
        auto key = load_hmac_key(cfg.hmac_key_file);
        if (!key) return std::move(key).error();
        hmac_key = std::move(*key);
    }
    if (!cfg.seal_key_file.empty()) {
        auto key = load_seal_key(cfg.seal_key_file);
        if (!key) return std::move(key).error();
        seal_key = std::move(*key);
    }
    return {};
}

AuditLog::Impl::PreparedCode AuditLog::Impl::prepare_code(const std::string& code) const {
    PreparedCode out;
    out.meta["code_sha256"] = sha256_hex(code);
    out.meta["code_bytes"] = code.size();
    Redaction r = redact_secrets(code);
    if (!r.counts.empty()) {
        auto& list = out.meta["code_redactions"] = nlohmann::json::array();
        for (const auto& [kind, count] : r.counts) list.push_back({{"kind", kind}, {"count", count}});
    }
    out.meta["code_truncated"] = r.text.size() > cfg.code_max_bytes;
    out.text = cap_utf8(std::move(r.text), cfg.code_max_bytes);
    return out;
}

// Fills the chain fields of `record` (under mu and the file lock) and
// returns its line. Called again for the same record when a rotation
// moved the chain head, so the fields of an earlier attempt are dropped.
Result<std::string> AuditLog::Impl::seal_line(nlohmann::json& record, const PreparedCode* code) {
    record.erase("hash");
    record.erase("hmac");
    record["seq"] = next_seq;
    record["ts"] = format_rfc3339_us(std::chrono::system_clock::now());
    record["prev_hash"] = prev_hash;
    if (code) {
        record.update(code->meta);
        if (!seal_key.empty()) {
            auto sealed = seal(seal_key, code->text, seal_aad(next_seq));
            if (!sealed) return std::move(sealed).error();
            record["code_sealed"] = std::move(*sealed);
        } else if (cfg.code_max_bytes > 0) {
            record["code"] = code->text;
        }
    }
    std::string hash = chain_hash(prev_hash, dump_record(record));
    if (!hmac_key.empty()) record["hmac"] = hmac_hex(hmac_key, hash);
    record["hash"] = hash;
    return dump_record(record) + "\n";
}

// Takes the flock on the file now at cfg.path and catches up with it. The
// lock may be granted on a file another process renamed away (rotated)
// while we waited; nobody appends there any more, so we move to the new
// file and lock again. The check is race-free because a rotation renames
// the file only while holding its lock.
Status AuditLog::Impl::lock_current() {
    constexpr int kMaxSwitches = 64;
    for (int attempt = 0; attempt < kMaxSwitches; ++attempt) {
        if (Status st = lock_exclusive(file->get(), cfg.path); !st) return st;
        struct stat held {}, current {};
        if (::fstat(file->get(), &held) != 0) {
            Error e = sys_error("stat audit log " + cfg.path);
            (void)::flock(file->get(), LOCK_UN);
            return e;
        }
        bool present = ::stat(cfg.path.c_str(), &current) == 0;
        if (present && same_file(held, current)) {
            locked = true;
            auto recovery = catch_up(held);
            if (!recovery) return std::move(recovery).error();
            if (recovery->is_null()) return {};
            (*recovery)["event"] = "recovery";
            auto ref = commit_line(*recovery, "");
            if (!ref) return std::move(ref).error().wrap("record audit log recovery");
            return {};
        }
        if (!present && errno != ENOENT) {
            Error e = sys_error("stat audit log " + cfg.path);
            (void)::flock(file->get(), LOCK_UN);
            return e;
        }
        (void)::flock(file->get(), LOCK_UN);
        if (Status st = switch_to_current_file(); !st) return st;
    }
    return make_error("lock audit log " + cfg.path,
                      "the file was replaced " + std::to_string(kMaxSwitches) +
                          " times while waiting for its lock; check that nothing but kiln renames or deletes it");
}

void AuditLog::Impl::unlock_file() {
    if (!locked) return;
    (void)::flock(file->get(), LOCK_UN);  // cannot fail on a valid flock'd fd
    locked = false;
}

// Leaves a file another process rotated away (or someone removed) for the
// one now at cfg.path. The rotating process synced the old file, unless it
// runs with fsync=never; our own unsynced records there are synced here so
// the promise made to their appenders holds whatever the other's config.
Status AuditLog::Impl::switch_to_current_file() {
    auto fresh = open_log(cfg.path);
    if (!fresh) return std::move(fresh).error();
    if (mode != Durability::kNever && written_seq > durable_seq) {
        ++stats.syncs;
        if (::fdatasync(file->get()) != 0) {
            Error e = sys_error("sync rotated audit log", "the records written before the rotation may not be on disk");
            spdlog::error("audit log {}: {}", cfg.path, e.what());
            lost_after = durable_seq;
            lost_through = written_seq;
        }
        durable_seq = written_seq;
        durable_count = written_count;
    }
    file = std::make_shared<UniqueFd>(std::move(*fresh));
    return {};
}

// Under the lock: if the file is not as this process left it, another
// writer appended (or rotated, or crashed mid-write). Re-reads the last
// complete record to continue the chain from it, and cuts a torn line; the
// returned recovery event (null when nothing was cut) goes in before the
// next record.
Result<nlohmann::json> AuditLog::Impl::catch_up(const struct stat& st) {
    auto size = static_cast<std::uint64_t>(st.st_size);
    bool ours = st.st_dev == known_dev && st.st_ino == known_ino;
    if (ours && size == file_size) return nlohmann::json();
    // Another writer, a cut torn line or a truncate from outside may have
    // freed what this process reserved; the next renewal covers it again.
    reserved_end = 0;
    // Our own failed write whose partial line could not be cut then: the
    // file is exactly as that write left it, so it is ours to trim.
    if (ours && partial_size != 0 && size == partial_size && ::ftruncate(file->get(), static_cast<off_t>(file_size)) == 0) {
        partial_size = 0;
        return nlohmann::json();
    }
    partial_size = 0;
    auto tail = read_tail(file->get());
    if (!tail) return std::move(tail).error().wrap("catch up with audit log " + cfg.path);
    // Nobody else writes while we hold the lock, so a line without its
    // newline is a writer that died in the middle of its write.
    auto recovery = cut_torn_tail(file->get(), *tail, cfg.path);
    if (!recovery) return recovery;
    auto head = tail->last_line.empty() ? head_of_rotated(cfg.path) : parse_head(tail->last_line, cfg.path);
    if (!head) return std::move(head).error();
    known_dev = st.st_dev;
    known_ino = st.st_ino;
    file_size = tail->complete_size;
    if (head->seq + 1 >= next_seq) {
        next_seq = head->seq + 1;
        prev_hash = head->hash;
    } else {
        // Records this process wrote are gone: the file was removed or cut
        // from outside. Continuing our own chain keeps seq monotonic and
        // makes `kiln audit verify` report the gap instead of hiding it.
        spdlog::warn("audit log {} ends at seq {} but this process already wrote seq {}; it was removed or cut "
                     "outside kiln; the chain continues from seq {}",
                     cfg.path, head->seq, next_seq - 1, next_seq);
    }
    return recovery;
}

// Under mu, with the file unlocked; returns with it still locked (the
// caller's FileUnlock releases it).
Result<AuditRef> AuditLog::Impl::append_locked(nlohmann::json& record, const PreparedCode* code) {
    constexpr int kMaxRotations = 3;
    for (int rotations = 0;; ++rotations) {
        if (Status st = lock_current(); !st) return std::move(st).error();
        auto line = seal_line(record, code);
        if (!line) return std::move(line).error();
        if (rotations < kMaxRotations && rotation_due(line->size())) {
            if (Status st = rotate(); !st) return std::move(st).error();
            continue;  // the record is sealed again on the new file's head
        }
        auto ref = commit_line(record, *line);
        if (ref) (void)keep_reserve();  // a failed `reserve` record is logged; the caller's record is in
        return ref;
    }
}

// Writes one sealed record (`line` empty: seal `record` first) and moves
// the chain head past it.
Result<AuditRef> AuditLog::Impl::commit_line(const nlohmann::json& record, const std::string& line) {
    nlohmann::json sealed_record;
    std::string sealed_line = line;
    const nlohmann::json* rec = &record;
    if (line.empty()) {
        sealed_record = record;
        auto made = seal_line(sealed_record, nullptr);
        if (!made) return std::move(made).error();
        sealed_line = std::move(*made);
        rec = &sealed_record;
    }
    if (Status st = write_line(sealed_line); !st) return std::move(st).error();
    std::string hash = (*rec)["hash"].get<std::string>();
    AuditRef ref{next_seq, record_id(next_seq, hash)};
    written_seq = next_seq++;
    ++written_count;
    ++stats.records;
    metrics::audit_records().inc();
    prev_hash = std::move(hash);
    return ref;
}

Status AuditLog::Impl::write_line(const std::string& line) {
    int fd = file->get();
    std::size_t done = 0;
    while (done < line.size()) {
        ssize_t n = ::write(fd, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            Error e = sys_error("write audit record to " + cfg.path,
                                "free space on the audit log's filesystem or fix its permissions");
            // Never leave a partial line: it would glue two records
            // together. If it cannot be cut now, the next lock holder cuts it.
            if (done > 0 && ::ftruncate(fd, static_cast<off_t>(file_size)) != 0) partial_size = file_size + done;
            reserved_end = 0;  // a truncate frees the blocks past the end
            return e;
        }
        done += static_cast<std::size_t>(n);
    }
    file_size += line.size();
    return {};
}

// Under mu and the file lock, after a write: keeps at least
// cfg.reserve_bytes allocated past the end of the file, so the next records
// land in blocks the filesystem has already handed over and ENOSPC cannot
// reach them however full the disk gets. A renewal allocates an eighth more
// than it must, so it runs once per reserve_bytes/8 written rather than per
// record (on ext4 each fallocate costs about 4 us, a journal handle). A
// renewal that fails leaves what is reserved in place: the log goes
// unhealthy with nearly reserve_bytes of room still left for the calls
// already admitted.
ReserveChange AuditLog::Impl::renew_reserve() {
    if (reserve_state == ReserveState::kUnsupported) return ReserveChange::kNone;
    const std::uint64_t need = file_size + cfg.reserve_bytes;
    if (reserve_state == ReserveState::kInForce && reserved_end >= need) return ReserveChange::kNone;
    const std::uint64_t from = std::max(file_size, reserved_end);
    std::uint64_t target = need + cfg.reserve_bytes / 8;
    int err = from < target ? allocate_past_end(file->get(), from, target - from) : 0;
    // Short of the slack, not of the reserve: allocate just what is due.
    if (err == ENOSPC) {
        target = std::max(need, reserved_end);
        err = from < need ? allocate_past_end(file->get(), from, need - from) : 0;
    }
    if (err == 0) {
        reserved_end = target;
        if (reserve_state == ReserveState::kInForce) return ReserveChange::kNone;
        reserve_state = ReserveState::kInForce;
        spdlog::warn("audit log {}: its reserve of {} bytes is in place again", cfg.path, cfg.reserve_bytes);
        return ReserveChange::kRenewed;
    }
    return reserve_failed(err);
}

// A renewal failed with `err`: the filesystem cannot allocate ahead at all,
// or it is full (or over quota) and the log is now unhealthy.
ReserveChange AuditLog::Impl::reserve_failed(int err) {
    const std::uint64_t room = reserved_end > file_size ? reserved_end - file_size : 0;
    if (allocation_unsupported(err)) {
        reserve_state = ReserveState::kUnsupported;
        reserve_error = make_error("reserve space for audit log " + cfg.path,
                                   "its filesystem cannot allocate ahead (fallocate), so a disk filled by a run can "
                                   "stop the log from recording; put audit.path on ext4, xfs or tmpfs",
                                   err);
        spdlog::warn("audit log {}: no reserve: {}", cfg.path, reserve_error.what());
        return ReserveChange::kUnavailable;
    }
    reserve_error = make_error("renew the " + std::to_string(cfg.reserve_bytes) + "-byte reserve of audit log " + cfg.path,
                               "free space on its filesystem (" + std::to_string(room) +
                                   " bytes are still reserved for the records of calls already admitted)",
                               err);
    if (reserve_state == ReserveState::kLow) return ReserveChange::kNone;
    reserve_state = ReserveState::kLow;
    return ReserveChange::kExhausted;
}

// The `reserve` record (log-owned, docs/audit.md): when the reserve ran
// out, came back, or cannot exist on this filesystem.
nlohmann::json AuditLog::Impl::reserve_record(ReserveChange change) const {
    const char* action = "renewed";
    switch (change) {
        case ReserveChange::kExhausted: action = "exhausted"; break;
        case ReserveChange::kUnavailable: action = "unavailable"; break;
        case ReserveChange::kRenewed:
        case ReserveChange::kNone: break;
    }
    nlohmann::json record{{"event", "reserve"},
                          {"action", action},
                          {"reserve_bytes", cfg.reserve_bytes},
                          {"room_bytes", reserved_end > file_size ? reserved_end - file_size : 0}};
    if (change != ReserveChange::kRenewed) {
        record["errno"] = reserve_error.err;
        record["message"] = reserve_error.what();
    }
    return record;
}

// Renews the reserve and, when that changed its state, records the change
// in the room the reserve still holds.
Status AuditLog::Impl::keep_reserve() {
    ReserveChange change = renew_reserve();
    if (change == ReserveChange::kNone) return {};
    auto ref = commit_line(reserve_record(change), "");
    if (ref) return {};
    spdlog::error("audit log {}: could not record the change of its reserve: {}", cfg.path, ref.error().what());
    return std::move(ref).error();
}

// While the reserve is low nothing may be appended for a long time (with
// fail_closed no run is admitted), so each health check tries the renewal
// again: the log is healthy as soon as space returns.
void AuditLog::Impl::retry_reserve() {
    std::uint64_t seq = 0;
    {
        std::lock_guard lk(mu);
        if (reserve_state != ReserveState::kLow) return;
        FileUnlock unlock(*this);
        if (Status st = lock_current(); !st) return;
        Status recorded = keep_reserve();
        if (reserve_state == ReserveState::kLow || !recorded) return;
        set_healthy();
        seq = written_seq;
    }
    (void)make_durable(seq, false);  // a sync failure is recorded in healthy/last_error
}

// After a record was written: healthy unless the reserve could not be
// renewed, in which case the log stays unhealthy although it still writes.
void AuditLog::Impl::note_write_succeeded() {
    if (reserve_state == ReserveState::kLow) set_failure(reserve_error);
    else set_healthy();
}

// While the reserve is low the records go on into the room already
// reserved in this file instead of a fresh file that would need new blocks.
bool AuditLog::Impl::rotation_due(std::size_t line_size) const {
    return cfg.rotate_bytes != 0 && file_size != 0 && file_size + line_size > cfg.rotate_bytes &&
           reserve_state != ReserveState::kLow;
}

// Under the lock of the active file, so no other writer can append to it,
// rotate it too, or pick the same `.N`. Others notice the new inode at
// their next lock and move over.
Status AuditLog::Impl::rotate() {
    // Everything in the old file, whoever wrote it, is made durable before
    // it is renamed, so a rotated file is always complete.
    if (mode != Durability::kNever) {
        ++stats.syncs;
        if (::fdatasync(file->get()) != 0) return sys_error("sync audit log before rotation");
    }
    durable_seq = written_seq;
    durable_count = written_count;
    std::string rotated = cfg.path + "." + std::to_string(last_rotation_index(cfg.path) + 1);
    if (::rename(cfg.path.c_str(), rotated.c_str()) != 0) return sys_error("rotate audit log to " + rotated);
    auto fresh = open_log(cfg.path);
    if (!fresh) return std::move(fresh).error().wrap("rotate audit log");
    // The fresh file's reserve is made before the old one's is given back,
    // so a run filling the disk at this moment cannot take the space in
    // between; only when the disk has no room for both is the old one
    // released first. The next append checks the reserve as usual.
    if (reserve_state == ReserveState::kInForce && allocate_past_end(fresh->get(), 0, cfg.reserve_bytes) != 0) {
        release_reserve(file->get());
        (void)allocate_past_end(fresh->get(), 0, cfg.reserve_bytes);
    }
    release_reserve(file->get());
    // One directory sync makes both the rename and the new file durable.
    Status synced = sync_dir(cfg.path);
    unlock_file();
    file = std::make_shared<UniqueFd>(std::move(*fresh));
    return synced;
}

// Group commit: a thread whose record was covered by another thread's
// fdatasync returns without one of its own, so there is never more than one
// fdatasync per record and usually fewer under concurrency.
Status AuditLog::Impl::sync_through(std::uint64_t seq) {
    std::unique_lock lk(mu);
    if (seq > lost_after && seq <= lost_through)
        return make_error("sync audit log " + cfg.path,
                          "the sync of the file this record went to failed after another process rotated it; the "
                          "record may not be on disk");
    while (durable_seq < seq && syncing) synced_cv.wait(lk);
    if (durable_seq >= seq) return {};
    syncing = true;
    std::uint64_t target = written_seq;
    std::uint64_t target_count = written_count;
    auto fd = file;
    ++stats.syncs;
    lk.unlock();
    int rc = ::fdatasync(fd->get());
    Error e = rc == 0 ? Error{} : sys_error("sync audit log " + cfg.path, "the record may not be on disk");
    lk.lock();
    syncing = false;
    if (rc == 0) {
        durable_seq = std::max(durable_seq, target);
        durable_count = std::max(durable_count, target_count);
    } else {
        set_failure(e);
    }
    synced_cv.notify_all();
    if (rc != 0) return e;
    return {};
}

// What append waits for after the write, per audit.fsync. A sync failure
// is returned although the record is in the file: the caller cannot count
// on it surviving a power loss.
Status AuditLog::Impl::make_durable(std::uint64_t seq, bool batch_full) {
    switch (mode) {
        case Durability::kAlways:
            return sync_through(seq);
        case Durability::kBatch:
            if (batch_full) return sync_through(seq);
            flush_cv.notify_one();
            return {};
        case Durability::kNever:
            return {};
    }
    return {};
}

void AuditLog::Impl::flusher_loop() {
    std::unique_lock lk(mu);
    while (!stopping) {
        flush_cv.wait(lk, [&] { return stopping || written_seq > durable_seq; });
        if (stopping) break;
        // Let the batch fill for at most batch_interval, then commit it.
        flush_cv.wait_for(lk, cfg.batch_interval, [&] { return stopping; });
        std::uint64_t target = written_seq;
        lk.unlock();
        (void)sync_through(target);  // a failure is recorded in healthy/last_error
        lk.lock();
        if (durable_seq < target && !stopping) flush_cv.wait_for(lk, cfg.batch_interval, [&] { return stopping; });
    }
}

void AuditLog::Impl::set_failure(const Error& e) {
    if (healthy)
        spdlog::error("audit log {} failed: {} ({})", cfg.path, e.what(),
                      cfg.on_failure == AuditOnFailure::Continue ? "continuing without it: audit.on_failure=continue"
                                                   : "refusing executions until it recovers: audit.on_failure=fail_closed");
    healthy = false;
    last_error = e.what();
}

void AuditLog::Impl::set_healthy() {
    if (!healthy) spdlog::warn("audit log {} is writable again", cfg.path);
    healthy = true;
    last_error.clear();
}

AuditLog::AuditLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AuditLog::~AuditLog() {
    {
        std::lock_guard lk(impl_->mu);
        impl_->stopping = true;
    }
    impl_->flush_cv.notify_all();
    if (impl_->flusher.joinable()) impl_->flusher.join();
    if (impl_->mode == Durability::kBatch && impl_->written_seq > impl_->durable_seq)
        (void)impl_->sync_through(impl_->written_seq);
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(const AuditConfig& cfg) {
    auto impl = std::make_unique<Impl>();
    impl->cfg = cfg;
    if (cfg.path.empty()) return make_error("open audit log", "audit.path is empty");
    auto mode = parse_durability(cfg.fsync);
    if (!mode) return std::move(mode).error();
    impl->mode = *mode;
    if (Status st = impl->load_keys(); !st) return std::move(st).error();
    if (Status st = make_parent_dirs(cfg.path); !st) return std::move(st).error();
    auto fd = open_log(cfg.path);
    if (!fd) return std::move(fd).error();
    impl->file = std::make_shared<UniqueFd>(std::move(*fd));
    // Catching up once now, under the lock, finds the chain head, cuts a
    // torn line left by a crash (recording a `recovery` event) and refuses
    // a file whose last line is not a record, before any caller relies on
    // the log.
    {
        std::lock_guard lk(impl->mu);
        FileUnlock unlock(*impl);
        if (Status st = impl->lock_current(); !st) return std::move(st).error().wrap("open audit log " + cfg.path);
        // A disk already too full for the reserve does not stop the server
        // from starting: the log opens unhealthy, and fail_closed refuses
        // runs until space returns.
        (void)impl->keep_reserve();
        if (impl->reserve_state == ReserveState::kLow) impl->set_failure(impl->reserve_error);
    }
    Impl* raw = impl.get();
    std::unique_ptr<AuditLog> log(new AuditLog(std::move(impl)));
    if (raw->mode == Durability::kBatch) raw->flusher = std::thread([raw] { raw->flusher_loop(); });
    if (raw->written_seq > raw->durable_seq)
        if (Status st = raw->make_durable(raw->written_seq, false); !st)
            return std::move(st).error().wrap("record audit log recovery");
    return log;
}

Result<AuditRef> AuditLog::append(std::string_view event, nlohmann::json fields) {
    if (fields.is_null()) fields = nlohmann::json::object();
    if (!fields.is_object()) return make_error("append audit record", "fields must be a JSON object");
    for (auto key : kReservedFields)
        if (fields.contains(key))
            return make_error("append audit record", "field '" + std::string(key) + "' is set by the audit log itself");
    // Redaction is the slow part; it runs before the locks so appends from
    // several sessions overlap.
    std::optional<Impl::PreparedCode> code;
    if (auto it = fields.find("code"); it != fields.end()) {
        if (!it->is_string()) return make_error("append audit record", "field 'code' must be a string");
        code = impl_->prepare_code(it->get<std::string>());
        fields.erase(it);
    }
    fields["event"] = std::string(event);
    // Several replicas keep one chain each; the record says whose it is, so
    // a merged view still tells which replica served each call.
    if (!impl_->cfg.replica.empty()) fields["replica"] = impl_->cfg.replica;

    Impl& s = *impl_;
    std::unique_lock lk(s.mu);
    Result<AuditRef> ref = [&] {
        FileUnlock unlock(s);
        return s.append_locked(fields, code ? &*code : nullptr);
    }();
    if (!ref) {
        ++s.stats.write_failures;
        metrics::audit_write_failures().inc();
        s.set_failure(ref.error());
        return std::move(ref).error();
    }
    s.note_write_succeeded();
    bool batch_full = s.mode == Durability::kBatch && s.written_count - s.durable_count >= s.cfg.batch_records;
    lk.unlock();

    if (Status st = s.make_durable(ref->seq, batch_full); !st) {
        metrics::audit_write_failures().inc();
        return std::move(st).error();
    }
    return ref;
}

bool AuditLog::healthy() const {
    impl_->retry_reserve();
    std::lock_guard lk(impl_->mu);
    return impl_->healthy;
}

bool AuditLog::reserve_in_force() const {
    std::lock_guard lk(impl_->mu);
    return impl_->reserve_state == ReserveState::kInForce;
}

std::string AuditLog::last_error() const {
    std::lock_guard lk(impl_->mu);
    return impl_->last_error;
}

int AuditLog::fd() const {
    std::lock_guard lk(impl_->mu);
    return impl_->file->get();
}

const std::string& AuditLog::path() const { return impl_->cfg.path; }

AuditStats AuditLog::stats() const {
    std::lock_guard lk(impl_->mu);
    return impl_->stats;
}

}  // namespace kiln::audit
