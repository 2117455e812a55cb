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

// A test that applies only to some machines or modes (root-only, v2-only):
// reports why it does not apply and returns, in CI as well.
#define KILN_ONLY_IF(cond, reason)                         \
    do {                                                   \
        if (!(cond)) {                                     \
            MESSAGE("not applicable: " << reason);         \
            return;                                        \
        }                                                  \
    } while (0)

Runtime& runtime();
std::string probe_path();
std::string kiln_path();

// A spec that runs the probe with the given arguments.
SandboxSpec probe_spec(std::vector<std::string> args);
ExecResult run_ok(const SandboxSpec& spec, const RunHooks& hooks = {});

// "key value" lines; repeated keys keep the last value.
std::map<std::string, std::string> parse(const std::string& text);
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
