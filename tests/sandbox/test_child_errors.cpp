// Failures in the jail's setup child and in kiln-init: the error names the
// step, carries errno, and tells the operator what to check next.
#include <cerrno>
#include <cstring>
#include <string>

#include "sandbox/hints.hpp"
#include "tests/sandbox/harness.hpp"

using namespace kiln::sandbox;
using namespace kiln::sandbox::test;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string hint(kiln_hint h, int err) {
    const char* text = hint_for(h, err);
    return text ? text : "";
}

}  // namespace

TEST_CASE("a cwd missing in the jail fails in kiln-init with the step, errno and advice") {
    LeakCheck leaks;
    SandboxSpec spec;
    spec.argv = {"/bin/true"};
    spec.cwd = "/no/such/dir";
    auto r = runtime().run(spec, {});
    REQUIRE(!r.ok());
    CHECK(r.error().step == "chdir /no/such/dir");
    CHECK(r.error().err == ENOENT);
    const std::string what = r.error().what();
    CHECK_MESSAGE(contains(what, "chdir /no/such/dir: the working directory must exist inside the jail"), what);
    CHECK_MESSAGE(contains(what, std::strerror(ENOENT)), what);
    leaks.verify();
}

TEST_CASE("the hint table maps (step, errno) to what the operator should do") {
    CHECK(contains(hint(KILN_HINT_NAMESPACE, EPERM), "kernel.unprivileged_userns_clone"));
    CHECK(contains(hint(KILN_HINT_NAMESPACE, EPERM), "apparmor_restrict_unprivileged_userns"));
    CHECK(contains(hint(KILN_HINT_NAMESPACE, EACCES), "user.max_user_namespaces"));
    CHECK(contains(hint(KILN_HINT_NAMESPACE, ENOSPC), "user.max_*_namespaces"));
    // In a container: its seccomp profile, and a /proc whose /proc/sys is read-only.
    CHECK(contains(hint(KILN_HINT_NAMESPACE, EPERM), "deploy/seccomp/kiln.json"));
    CHECK(contains(hint(KILN_HINT_BUDGETS, EROFS), "procMount: Unmasked"));
    CHECK(contains(hint(KILN_HINT_LANDLOCK, ENOSYS), "lsm="));
    CHECK(contains(hint(KILN_HINT_LANDLOCK, EOPNOTSUPP), "lsm="));
    CHECK(contains(hint(KILN_HINT_CGROUP, EACCES), "Delegate=yes"));
    CHECK(contains(hint(KILN_HINT_MOUNT, EPERM), "AppArmor"));
    CHECK(contains(hint(KILN_HINT_MOUNT, ENOTDIR), "nest under files"));
    CHECK(contains(hint(KILN_HINT_BIND_SOURCE, ENOENT), "must exist on the host"));
    CHECK(contains(hint(KILN_HINT_RLIMIT, EPERM), "hard limit"));
    CHECK(contains(hint(KILN_HINT_CWD, ENOENT), "working directory"));
    // Out of descriptors is the same advice whatever the step.
    for (kiln_hint h : {KILN_HINT_MOUNT, KILN_HINT_BIND_SOURCE, KILN_HINT_PROCESS, KILN_HINT_LANDLOCK})
        CHECK(contains(hint(h, EMFILE), "RLIMIT_NOFILE"));
    // No advice is better than wrong advice: an unexpected errno gets none.
    CHECK(hint_for(KILN_HINT_LANDLOCK, EPERM) == nullptr);
    CHECK(hint_for(KILN_HINT_NAMESPACE, EINVAL) == nullptr);
    CHECK(hint_for(KILN_HINT_NONE, EPERM) == nullptr);
}

TEST_CASE("a child record becomes an Error without trusting its terminator") {
    ChildError e;
    e.err = EPERM;
    e.hint = KILN_HINT_NAMESPACE;
    std::memset(e.step, 'x', sizeof e.step);  // no NUL anywhere
    kiln::Error err = child_failure(e);
    CHECK(err.step == std::string(sizeof e.step, 'x'));
    CHECK(err.err == EPERM);
    CHECK(contains(err.message, "unprivileged user namespaces"));
    ChildError plain;
    plain.err = EIO;
    std::strcpy(plain.step, "sethostname kiln");
    plain.hint = KILN_HINT_PROCESS;
    plain.hint = 999;  // a record from a newer kiln-init: no advice, no crash
    CHECK(child_failure(plain).message == "jail setup failed in the child");
    plain.hint = KILN_HINT_PROCESS;
    CHECK(child_failure(plain).what() == std::string("sethostname kiln: jail setup failed in the child: ") +
                                             std::strerror(EIO));
}

TEST_CASE("a mount step that fails in the setup child names the step, errno and advice") {
    LeakCheck leaks;
    SandboxSpec spec;
    spec.argv = {"/bin/true"};
    // A directory bound below a file bound before it: the child's mkdir of
    // the second target fails.
    spec.mounts = {{"/etc/hostname", "/opt/kiln-f", false}, {"/etc", "/opt/kiln-f/etc", false}};
    auto r = runtime().run(spec, {});
    REQUIRE(!r.ok());
    const std::string what = r.error().what();
    CHECK(r.error().err == ENOTDIR);
    CHECK_MESSAGE(contains(r.error().step, "mkdir "), what);
    CHECK_MESSAGE(contains(r.error().step, "/opt/kiln-f/etc"), what);
    CHECK_MESSAGE(contains(what, "do not nest under files: " + std::string(std::strerror(ENOTDIR))), what);
    leaks.verify();
}
