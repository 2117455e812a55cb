// Shared helpers of the sandbox tests: the runtime under test, the probe
// bound into the jail, "key value" report parsing, leak checks and skips.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "sandbox/runtime.hpp"

namespace kiln::sandbox::test {

constexpr const char* kProbeInJail = "/opt/kiln/probe";

// CI sets KILN_MUST_WORK=1: a control this host cannot provide is a failure there.
bool must_work();
bool is_root();

// A control the host cannot provide: skip with the reason, or fail in CI.
#define KILN_REQUIRE_HOST(cond, reason)                              \
    do {                                                             \
        if (!(cond)) {                                               \
            if (::kiln::sandbox::test::must_work()) FAIL("KILN_MUST_WORK=1 but: " << reason); \
            MESSAGE("SKIP: " << reason);                             \
            return;                                                  \
        }                                                            \
    } while (0)

// A test case that applies only to some machines or modes (root-only,
// v1-only, v2-only), in CI as well. The condition is evaluated when the case
// registers, so doctest counts the case as skipped, not passed, and the
// skip reporter (main.cpp) prints its name with the reason.
#define KILN_TEST_CASE_IF(name, applies, reason) \
    TEST_CASE(name * doctest::skip(::kiln::sandbox::test::not_applicable(name, applies, reason)))

// Records a case that does not apply here and returns true (skip it).
bool not_applicable(const char* name, bool applies, const char* reason);
// The reason a case was recorded as not applicable, or nullptr.
const char* skip_reason(const std::string& name);

// Host facts cheap enough to decide applicability at registration.
bool has_cgroup_v1_controllers();  // memory and pids hierarchies mounted as v1
bool has_cgroup_v2_controllers();  // a cgroup2 hierarchy offering memory and pids
// The "Seccomp_filters:" line of /proc/<pid>/status for a jail process that
// Kiln gave `jail_filters` filters: they stack on those the suite itself runs
// under (none on a host; the container's profile in Kiln's image, where
// tests/deploy runs this suite).
std::string seccomp_filters_line(int jail_filters);

// run_on_image.sh runs the probe's cases with an imported image's tree as
// the root: then /root, /var, /run... are the image's own, not the host's.
bool on_image();

Runtime& runtime();
std::string probe_path();
std::string kiln_path();

// A spec that runs the probe with the given arguments.
SandboxSpec probe_spec(std::vector<std::string> args);
ExecResult run_ok(const SandboxSpec& spec, const RunHooks& hooks = {});
// run_ok for a probe (or any program) that must exit 0: a crash, a
// failed exec or an early exit is a failure, never an empty report.
ExecResult run_probe(const SandboxSpec& spec, const RunHooks& hooks = {});

// "key value" lines; repeated keys keep the last value. Reading a key the
// text does not have is a failure: a check on a probe's answer must not pass
// because the probe said nothing.
class Report {
public:
    const std::string& operator[](const std::string& key) const;
    std::size_t count(const std::string& key) const { return values_.count(key); }

private:
    friend Report parse(const std::string& text);
    std::map<std::string, std::string> values_;
};
Report parse(const std::string& text);
std::vector<std::string> values_of(const std::string& text, const std::string& key);

// Records the host state before a run and checks after it that nothing was
// left: no descendant process, no new mount, no run cgroup, no process named
// after a marker.
class LeakCheck {
public:
    explicit LeakCheck(std::string marker = {});
    void verify() const;

private:
    std::string marker_;
    std::size_t mounts_ = 0;
};

// A shell command line's exit status and output (stderr merged into it).
struct Output {
    int code = -1;
    std::string out;
};
Output sh(const std::string& cmd);

std::size_t count_descendants(int pid);
std::vector<std::string> run_cgroup_dirs();

// A temporary directory removed on destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// A TCP socket listening on the host's 127.0.0.1 at a port the kernel
// picks; non-blocking, so accept() tells at once whether anyone connected.
class HostListener {
public:
    HostListener();
    ~HostListener();
    HostListener(const HostListener&) = delete;
    HostListener& operator=(const HostListener&) = delete;
    int fd() const { return fd_; }
    int port() const { return port_; }

private:
    int fd_ = -1, port_ = 0;
};

}  // namespace kiln::sandbox::test
