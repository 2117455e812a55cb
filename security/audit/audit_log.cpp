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
#include "common/unique_fd.hpp"
#include "security/audit/files.hpp"
#include "security/audit/record.hpp"
#include "security/audit/redact.hpp"
#include "security/audit/seal.hpp"

namespace kiln::audit {
namespace {

enum class Durability { kAlways, kBatch, kNever };

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

Result<UniqueFd> open_locked(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) return sys_error("open audit log " + path, "check audit.path and its permissions");
    // One writer per chain: a second server appending to the same file
    // would interleave two chains and make every later record unverifiable.
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0)
        return sys_error("lock audit log " + path,
                         errno == EWOULDBLOCK ? "another kiln process is writing this audit log; give each server its own audit.path"
                                              : "");
    return fd;
}

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

}  // namespace

class AuditLog::Impl {
public:
    AuditConfig cfg;
    Durability mode = Durability::kAlways;
    std::string hmac_key;
    std::string seal_key;

    mutable std::mutex mu;
    std::shared_ptr<UniqueFd> file;  // shared so a sync in flight survives a rotation
    std::uint64_t file_size = 0;     // bytes of complete records in the active file
    bool needs_trim = false;         // a failed write may have left a partial line
    unsigned rotation_index = 0;
    std::uint64_t next_seq = 1;
    std::string prev_hash = kGenesisHash;
    std::uint64_t written_seq = 0;
    std::uint64_t durable_seq = 0;
    bool syncing = false;
    std::condition_variable synced_cv;
    bool healthy = true;
    std::string last_error;
    AuditStats stats;

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
    Status write_line(const std::string& line);
    Status rotate_if_needed(std::size_t line_size);
    Status sync_through(std::uint64_t seq);
    Status make_durable(std::uint64_t seq, bool batch_full);
    void flusher_loop();
    void set_failure(const Error& e);
    void set_healthy();
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

// Fills the chain fields of `record` (under mu) and returns its line.
Result<std::string> AuditLog::Impl::seal_line(nlohmann::json& record, const PreparedCode* code) {
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

Status AuditLog::Impl::write_line(const std::string& line) {
    int fd = file->get();
    // Never write after a partial line: it would glue two records together.
    if (needs_trim) {
        if (::ftruncate(fd, static_cast<off_t>(file_size)) != 0) return sys_error("trim partial audit record");
        needs_trim = false;
    }
    std::size_t done = 0;
    while (done < line.size()) {
        ssize_t n = ::write(fd, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            Error e = sys_error("write audit record to " + cfg.path,
                                "free space on the audit log's filesystem or fix its permissions");
            if (done > 0 && ::ftruncate(fd, static_cast<off_t>(file_size)) != 0) needs_trim = true;
            return e;
        }
        done += static_cast<std::size_t>(n);
    }
    file_size += line.size();
    return {};
}

Status AuditLog::Impl::rotate_if_needed(std::size_t line_size) {
    if (cfg.rotate_bytes == 0 || file_size == 0 || file_size + line_size <= cfg.rotate_bytes) return {};
    // Everything in the old file is made durable before it is renamed, so
    // a rotated file is always complete.
    if (mode != Durability::kNever) {
        ++stats.syncs;
        if (::fdatasync(file->get()) != 0) return sys_error("sync audit log before rotation");
    }
    durable_seq = written_seq;
    std::string rotated = cfg.path + "." + std::to_string(rotation_index + 1);
    if (::rename(cfg.path.c_str(), rotated.c_str()) != 0) return sys_error("rotate audit log to " + rotated);
    ++rotation_index;
    auto fd = open_locked(cfg.path);
    if (!fd) return std::move(fd).error().wrap("rotate audit log");
    file = std::make_shared<UniqueFd>(std::move(*fd));
    file_size = 0;
    needs_trim = false;
    return sync_dir(cfg.path);
}

// Group commit: a thread whose record was covered by another thread's
// fdatasync returns without one of its own, so there is never more than one
// fdatasync per record and usually fewer under concurrency.
Status AuditLog::Impl::sync_through(std::uint64_t seq) {
    std::unique_lock lk(mu);
    while (durable_seq < seq && syncing) synced_cv.wait(lk);
    if (durable_seq >= seq) return {};
    syncing = true;
    std::uint64_t target = written_seq;
    auto fd = file;
    ++stats.syncs;
    lk.unlock();
    int rc = ::fdatasync(fd->get());
    Error e = rc == 0 ? Error{} : sys_error("sync audit log " + cfg.path, "the record may not be on disk");
    lk.lock();
    syncing = false;
    if (rc == 0) durable_seq = std::max(durable_seq, target);
    else set_failure(e);
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
                      cfg.on_failure == "continue" ? "continuing without it: audit.on_failure=continue"
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
    auto fd = open_locked(cfg.path);
    if (!fd) return std::move(fd).error();
    auto tail = read_tail(fd->get());
    if (!tail) return std::move(tail).error().wrap("open audit log " + cfg.path);

    auto recovery = cut_torn_tail(fd->get(), *tail, cfg.path);
    if (!recovery) return std::move(recovery).error();
    auto head = tail->last_line.empty() ? head_of_rotated(cfg.path) : parse_head(tail->last_line, cfg.path);
    if (!head) return std::move(head).error();

    impl->file = std::make_shared<UniqueFd>(std::move(*fd));
    impl->file_size = tail->complete_size;
    impl->rotation_index = last_rotation_index(cfg.path);
    impl->next_seq = head->seq + 1;
    impl->prev_hash = head->hash;
    impl->written_seq = impl->durable_seq = head->seq;
    Impl* raw = impl.get();
    std::unique_ptr<AuditLog> log(new AuditLog(std::move(impl)));
    if (raw->mode == Durability::kBatch) raw->flusher = std::thread([raw] { raw->flusher_loop(); });
    if (!recovery->is_null()) {
        auto ref = log->append("recovery", std::move(*recovery));
        if (!ref) return std::move(ref).error().wrap("record audit log recovery");
    }
    return log;
}

Result<AuditRef> AuditLog::append(std::string_view event, nlohmann::json fields) {
    if (fields.is_null()) fields = nlohmann::json::object();
    if (!fields.is_object()) return make_error("append audit record", "fields must be a JSON object");
    for (auto key : kReservedFields)
        if (fields.contains(key))
            return make_error("append audit record", "field '" + std::string(key) + "' is set by the audit log itself");
    // Redaction is the slow part; it runs before the lock so appends from
    // several sessions overlap.
    std::optional<Impl::PreparedCode> code;
    if (auto it = fields.find("code"); it != fields.end()) {
        if (!it->is_string()) return make_error("append audit record", "field 'code' must be a string");
        code = impl_->prepare_code(it->get<std::string>());
        fields.erase(it);
    }
    fields["event"] = std::string(event);

    Impl& s = *impl_;
    std::unique_lock lk(s.mu);
    auto line = s.seal_line(fields, code ? &*code : nullptr);
    if (!line) return std::move(line).error();
    Status st = s.rotate_if_needed(line->size());
    if (st) st = s.write_line(*line);
    if (!st) {
        ++s.stats.write_failures;
        s.set_failure(st.error());
        return std::move(st).error();
    }
    AuditRef ref{s.next_seq, record_id(s.next_seq, fields["hash"].get<std::string>())};
    s.written_seq = s.next_seq++;
    ++s.stats.records;
    s.prev_hash = fields["hash"].get<std::string>();
    s.set_healthy();
    bool batch_full = s.mode == Durability::kBatch && s.written_seq - s.durable_seq >= s.cfg.batch_records;
    lk.unlock();

    if (Status st = s.make_durable(ref.seq, batch_full); !st) return std::move(st).error();
    return ref;
}

bool AuditLog::healthy() const {
    std::lock_guard lk(impl_->mu);
    return impl_->healthy;
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
