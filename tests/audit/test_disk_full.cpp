// Disk full: on a 1 MiB tmpfs the log must fail closed (healthy() false,
// append returns the error), leave no partial line behind, keep every
// record it acknowledged, and recover once space is freed.
#include <doctest/doctest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "security/audit/audit_log.hpp"
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
    explicit TmpfsMount(const std::string& dir) : dir_(dir) {
        mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m,mode=0700") == 0;
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

TEST_CASE("disk full: fail closed, no partial record, recover after space is freed") {
    if (::geteuid() != 0) {
        if (must_work()) FAIL("the disk-full test needs root to mount a tmpfs (KILN_MUST_WORK=1 forbids skipping)");
        MESSAGE("skipped: the disk-full test needs root to mount a tmpfs");
        return;
    }
    test::TempDir dir;
    std::string mnt = dir.file("small");
    REQUIRE(std::filesystem::create_directory(mnt));
    TmpfsMount mount(mnt);
    if (!mount.mounted()) {
        if (must_work()) FAIL("cannot mount a tmpfs: " << mount.error());
        MESSAGE("skipped: cannot mount a tmpfs: " << mount.error());
        return;
    }
    std::string filler = mnt + "/filler";
    test::write_file(filler, std::string(256 * 1024, 'f'));

    AuditConfig cfg;
    cfg.path = mnt + "/audit/audit.jsonl";
    cfg.fsync = "always";
    auto opened = AuditLog::open(cfg);
    REQUIRE(opened.ok());
    auto& log = **opened;

    const std::string payload(3000, 'p');
    std::uint64_t acknowledged = 0;
    std::string failure;
    for (int i = 0; i < 1000; ++i) {
        auto r = log.append("execution", {{"i", i}, {"output", payload}});
        if (!r.ok()) {
            failure = r.error().what();
            break;
        }
        acknowledged = r->seq;
    }
    REQUIRE_MESSAGE(!failure.empty(), "1 MiB tmpfs never filled up");
    CHECK(acknowledged > 100);
    CHECK_FALSE(log.healthy());
    CHECK(log.last_error().find("No space left") != std::string::npos);
    CHECK(failure.find("free space") != std::string::npos);
    // Still refusing while the disk is full, and still nothing partial.
    CHECK_FALSE(log.append("execution", {{"output", payload}}).ok());
    CHECK_FALSE(log.healthy());

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
    CHECK(recovered->records == acknowledged + 1);
}

}  // namespace
}  // namespace kiln::audit
