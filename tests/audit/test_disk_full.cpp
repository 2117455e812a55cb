// Disk full, on small tmpfs mounts (root). The log's own growth fills the
// disk: it must fail closed (healthy() false, append returns the error),
// leave no partial line behind, keep every record it acknowledged, and
// recover once space is freed. Another file fills the disk, as a hostile run
// writing into a workspace on the log's filesystem would: the records of
// the call in flight must still land, in the room reserved ahead of the
// log's end, while the log reports itself unhealthy so fail_closed refuses
// new runs, until space returns.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

#include "common/kiln_metrics.hpp"
#include "security/audit/audit_log.hpp"
#include "security/audit/files.hpp"
#include "security/audit/verify.hpp"
#include "tests/audit/helpers.hpp"

namespace kiln::audit {
namespace {

bool must_work() {
    const char* v = std::getenv("KILN_MUST_WORK");
    return v && std::string(v) == "1";
}

// Unmounts on scope exit so a failing check does not leave the mount behind.
class TmpfsMount {
public:
    explicit TmpfsMount(const std::string& dir, const char* fstype = "tmpfs", const char* options = "size=1m,mode=0700")
        : dir_(dir) {
        mounted_ = ::mount(fstype, dir.c_str(), fstype, MS_NOSUID | MS_NODEV | MS_NOEXEC, options) == 0;
        if (!mounted_) error_ = std::strerror(errno);
    }
    ~TmpfsMount() {
        if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    }
    bool mounted() const { return mounted_; }
    const std::string& error() const { return error_; }

private:
    std::string dir_;
    bool mounted_ = false;
    std::string error_;
};

// Root and a mount of `fstype` at a fresh directory, or a skip (a failure
// under KILN_MUST_WORK=1). Returns the mount point, empty when skipped.
class SmallDisk {
public:
    explicit SmallDisk(const char* fstype = "tmpfs", const char* options = "size=1m,mode=0700") {
        if (::geteuid() != 0) {
            skip("the disk-full tests need root to mount a " + std::string(fstype));
            return;
        }
        std::string mnt = dir_.file("small");
        REQUIRE(std::filesystem::create_directory(mnt));
        mount_.emplace(mnt, fstype, options);
        if (!mount_->mounted()) {
            skip("cannot mount a " + std::string(fstype) + ": " + mount_->error());
            return;
        }
        path_ = mnt;
    }
    bool ready() const { return !path_.empty(); }
    const std::string& path() const { return path_; }

private:
    static void skip(const std::string& why) {
        if (must_work()) FAIL(why << " (KILN_MUST_WORK=1 forbids skipping)");
        MESSAGE("skipped: " << why);
    }
    test::TempDir dir_;
    std::optional<TmpfsMount> mount_;
    std::string path_;
};

// Writes `path` until the filesystem refuses another byte, the way a run
// filling its workspace would. Returns the bytes written.
std::uint64_t fill_filesystem(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    const std::string chunk(64 * 1024, 'x');
    std::uint64_t total = 0;
    for (std::size_t size = chunk.size(); size > 0;) {
        ssize_t n = ::write(fd, chunk.data(), size);
        if (n > 0) total += static_cast<std::uint64_t>(n);
        else if (errno == ENOSPC) size /= 2;  // fill the last partial chunks too
        else break;
    }
    ::close(fd);
    return total;
}

std::vector<nlohmann::json> records_of(const std::string& path, const std::string& event) {
    std::vector<nlohmann::json> out;
    for (const auto& line : test::read_lines(path)) {
        auto r = nlohmann::json::parse(line);
        if (r["event"] == event) out.push_back(r);
    }
    return out;
}

TEST_CASE("disk full: fail closed, no partial record, recover after space is freed") {
    SmallDisk disk;
    if (!disk.ready()) return;
    const std::string mnt = disk.path();
    std::string filler = mnt + "/filler";
    test::write_file(filler, std::string(256 * 1024, 'f'));

    AuditConfig cfg;
    cfg.path = mnt + "/audit/audit.jsonl";
    cfg.fsync = "always";
    cfg.reserve_bytes = 64 * 1024;  // the default 4 MiB would not fit on this disk at all
    auto opened = AuditLog::open(cfg);
    REQUIRE(opened.ok());
    auto& log = **opened;
    const std::uint64_t records0 = metrics::audit_records().value(), failures0 = metrics::audit_write_failures().value();

    const std::string payload(3000, 'p');
    std::uint64_t acknowledged = 0;
    std::uint64_t acknowledged_unhealthy = 0;  // appends that landed after the log said it was unhealthy
    std::string failure;
    for (int i = 0; i < 1000; ++i) {
        bool was_healthy = log.healthy();
        auto r = log.append("execution", {{"i", i}, {"output", payload}});
        if (!r.ok()) {
            failure = r.error().what();
            break;
        }
        acknowledged = r->seq;
        if (!was_healthy) ++acknowledged_unhealthy;
    }
    REQUIRE_MESSAGE(!failure.empty(), "1 MiB tmpfs never filled up");
    CHECK(acknowledged > 100);
    // The log said it was unhealthy while its reserve still had room for
    // the records that followed (64 KiB: about 20 of these).
    CHECK(acknowledged_unhealthy >= 15);
    CHECK_FALSE(log.healthy());
    CHECK(log.last_error().find("No space left") != std::string::npos);
    CHECK(failure.find("free space") != std::string::npos);
    // Still refusing while the disk is full, and still nothing partial.
    CHECK_FALSE(log.append("execution", {{"output", payload}}).ok());
    CHECK_FALSE(log.healthy());
    // kiln_audit_write_failures_total: the two refused appends;
    // kiln_audit_records_total: every record the file holds, the log's own
    // `reserve` record included.
    CHECK(metrics::audit_write_failures().value() - failures0 == 2);
    CHECK(metrics::audit_records().value() - records0 == acknowledged);

    auto full = verify_chain({cfg.path}, {});
    REQUIRE(full.ok());
    CHECK_MESSAGE(full->intact, full->problem);
    CHECK(full->records == acknowledged);

    std::filesystem::remove(filler);
    auto after = log.append("execution", {{"note", "space freed"}});
    REQUIRE(after.ok());
    CHECK(after->seq == acknowledged + 1);  // the refused appends consumed no seq
    CHECK(log.healthy());
    auto recovered = verify_chain({cfg.path}, {});
    REQUIRE(recovered.ok());
    CHECK(recovered->intact);
    CHECK(recovered->records == acknowledged + 2);  // and the `reserve` record saying it is renewed
    auto reserve = records_of(cfg.path, "reserve");
    REQUIRE(reserve.size() == 2);
    CHECK(reserve[0]["action"] == "exhausted");
    CHECK(reserve[1]["action"] == "renewed");
}

// C011 against T003: a run fills the filesystem the log lives on while its
// call is in flight. Its decision and execution records must still be
// recorded, the log must say it is unhealthy (so fail_closed refuses the
// next run) and why, and it must come back by itself once space is freed.
TEST_CASE("disk filled by another file: the call in flight is still recorded, new runs refused, recovery") {
    SmallDisk disk("tmpfs", "size=2m,mode=0700");
    if (!disk.ready()) return;
    AuditConfig cfg;
    cfg.path = disk.path() + "/audit/audit.jsonl";
    cfg.fsync = "always";
    cfg.reserve_bytes = 256 * 1024;
    auto log = test::open_ok(cfg);
    REQUIRE(log->healthy());
    auto call = log->append("tool_call", {{"tool", "run_code"}, {"language", "python"}, {"code", "open('/workspace/f','w')"}});
    REQUIRE(call.ok());

    const std::string filler = disk.path() + "/workspace-filler";
    CHECK(fill_filesystem(filler) > 1024 * 1024);

    // The run ends; the tools layer records what happened.
    const std::string findings(6000, 'f');
    auto decision = log->append("decision", {{"call_id", call->id}, {"decision", "allow"}, {"reasons", {findings}}});
    REQUIRE_MESSAGE(decision.ok(), (decision.ok() ? "" : decision.error().what()));
    const std::string output(40'000, 'o');  // more than reserve_bytes/8: the reserve is renewed after it
    auto execution = log->append("execution", {{"call_id", call->id}, {"result", {{"exit_code", 0}}}, {"stdout", output}});
    REQUIRE_MESSAGE(execution.ok(), (execution.ok() ? "" : execution.error().what()));
    // The renewal failed: the next run would be refused (fail_closed), and
    // the reason names the reserve.
    CHECK_FALSE(log->healthy());
    CHECK_MESSAGE(log->last_error().find("reserve") != std::string::npos, log->last_error());
    // Still refusing: the disk is still full.
    CHECK_FALSE(log->healthy());

    auto chain = verify_chain({cfg.path}, {});
    REQUIRE(chain.ok());
    CHECK_MESSAGE(chain->intact, chain->problem);
    auto exhausted = records_of(cfg.path, "reserve");
    REQUIRE(exhausted.size() == 1);
    CHECK(exhausted[0]["action"] == "exhausted");
    CHECK(exhausted[0]["message"].get<std::string>().find("No space left") != std::string::npos);
    CHECK(records_of(cfg.path, "execution").size() == 1);

    std::filesystem::remove(filler);
    CHECK(log->healthy());
    CHECK(log->last_error().empty());
    auto reserve = records_of(cfg.path, "reserve");
    REQUIRE(reserve.size() == 2);
    CHECK(reserve[1]["action"] == "renewed");
    auto after = verify_chain({cfg.path}, {});
    REQUIRE(after.ok());
    CHECK_MESSAGE(after->intact, after->problem);
    CHECK(after->records == 5);  // tool_call, decision, execution, reserve exhausted, reserve renewed
}

TEST_CASE("disk nearly full at open: the log says its reserve could not be made") {
    SmallDisk disk("tmpfs", "size=1m,mode=0700");
    if (!disk.ready()) return;
    const std::string filler = disk.path() + "/filler";
    std::uint64_t filled = fill_filesystem(filler);
    REQUIRE(filled > 0);
    // Leave a few pages: room for records, none for a reserve.
    REQUIRE(::truncate(filler.c_str(), static_cast<off_t>(filled - 32 * 1024)) == 0);

    AuditConfig cfg;
    cfg.path = disk.path() + "/audit/audit.jsonl";
    cfg.reserve_bytes = 256 * 1024;
    auto log = test::open_ok(cfg);
    CHECK_FALSE(log->healthy());
    CHECK_MESSAGE(log->last_error().find("reserve") != std::string::npos, log->last_error());
    auto reserve = records_of(cfg.path, "reserve");
    REQUIRE(reserve.size() == 1);
    CHECK(reserve[0]["action"] == "exhausted");
}

// Bytes the filesystem has allocated to `path` (st_blocks is in 512-byte units).
std::uint64_t allocated_bytes(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

// The reserve is real blocks past the end, invisible to readers (the size
// is the records' bytes), and a file rotated away gives its reserve back.
TEST_CASE("reserve: allocated past the active file's end, not in its size, released at rotation") {
    test::TempDir dir;
    AuditConfig cfg = test::config_in(dir);
    cfg.reserve_bytes = 256 * 1024;
    cfg.rotate_bytes = 4000;
    auto log = test::open_ok(cfg);
    for (int i = 0; i < 12; ++i) REQUIRE(log->append("execution", {{"i", i}, {"output", std::string(900, 'o')}}).ok());
    CHECK(log->reserve_in_force());

    auto rotated = rotated_files(cfg.path);
    REQUIRE(rotated.size() >= 2);
    std::uint64_t size = std::filesystem::file_size(cfg.path);
    CHECK(size == test::read_file(cfg.path).size());
    CHECK(allocated_bytes(cfg.path) >= size + cfg.reserve_bytes);
    for (const auto& f : rotated) CHECK_MESSAGE(allocated_bytes(f) < std::filesystem::file_size(f) + 64 * 1024, f);
    auto chain = verify_chain(chain_files(cfg.path), {});
    REQUIRE(chain.ok());
    CHECK_MESSAGE(chain->intact, chain->problem);
    CHECK(chain->records == 12);
}

// ramfs has no fallocate: the log runs (healthy) but says, in its stderr
// log and in a `reserve` record, that a disk fill could silence it there.
TEST_CASE("reserve: a filesystem without fallocate says the reserve is not in force") {
    SmallDisk disk("ramfs", "mode=0700");
    if (!disk.ready()) return;
    AuditConfig cfg;
    cfg.path = disk.path() + "/audit.jsonl";
    auto log = test::open_ok(cfg);
    CHECK(log->healthy());
    CHECK_FALSE(log->reserve_in_force());
    REQUIRE(log->append("execution", {{"note", "still recorded"}}).ok());
    auto reserve = records_of(cfg.path, "reserve");
    REQUIRE(reserve.size() == 1);
    CHECK(reserve[0]["action"] == "unavailable");
    CHECK(reserve[0]["message"].get<std::string>().find("fallocate") != std::string::npos);
}

}  // namespace
}  // namespace kiln::audit
