// The probe reports from inside the jail; each test asserts one control.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <thread>
#include <cstring>
#include <set>
#include <sstream>

#include "sandbox/net.hpp"
#include "tests/sandbox/harness.hpp"

using namespace kiln::sandbox;
using namespace kiln::sandbox::test;

TEST_CASE("host capabilities are stated") {
    const auto& caps = runtime().capabilities();
    auto in_force = caps.in_force();
    for (const char* id : {"C001", "C002", "C003", "C006", "C008", "C009", "C012"})
        CHECK_MESSAGE(in_force.count(id) == 1, id << " not in force");
    CHECK(caps.controls.size() == 9);
    CHECK(caps.rootless == !is_root());
    if (is_root()) {
        CHECK(caps.host_uid == 65534);
        KILN_REQUIRE_HOST(caps.cgroup != "none (rlimits only)", "no writable cgroup for a root server");
        CHECK(in_force.count("C007") == 1);
    } else {
        CHECK(caps.host_uid == ::geteuid());
    }
    KILN_REQUIRE_HOST(in_force.count("C010") == 1, "no Landlock in this kernel");
    CHECK(caps.lsm.rfind("landlock", 0) == 0);
}

TEST_CASE("identity: unprivileged ids, no capabilities, no_new_privs, seccomp filter (C001 C006 C009)") {
    LeakCheck leaks;
    auto spec = probe_spec({"report"});
    auto r = run_ok(spec);
    REQUIRE(r.exit_code == 0);
    auto rep = parse(r.stdout_data);
    CHECK(rep["uid"] == "65534");
    CHECK(rep["euid"] == "65534");
    CHECK(rep["gid"] == "65534");
    for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
        CHECK_MESSAGE(rep[cap] == "0000000000000000", cap << " = " << rep[cap]);
    CHECK(rep["NoNewPrivs"] == "1");
    CHECK(rep["Seccomp"] == "2");
    CHECK(rep["hostname"] == "kiln");
    // Root servers drop supplementary groups; a rootless one cannot (they show as nogroup).
    if (is_root()) CHECK(rep["Groups"].empty());
    leaks.verify();
}

TEST_CASE("hygiene: only stdio fds, environment from the allowlist (C012 C013)") {
    ::setenv("KILN_TEST_SECRET", "hunter2", 1);
    int extra = ::open("/dev/null", O_RDONLY);  // not CLOEXEC: must still not reach the jail
    auto spec = probe_spec({"report"});
    spec.env = {"FOO=bar", "LANG=C"};
    auto r = run_ok(spec);
    ::close(extra);
    ::unsetenv("KILN_TEST_SECRET");
    auto fds = values_of(r.stdout_data, "fd");
    CHECK(std::set<std::string>(fds.begin(), fds.end()) == std::set<std::string>{"0", "1", "2"});
    std::set<std::string> keys;
    for (const auto& kv : values_of(r.stdout_data, "env")) keys.insert(kv.substr(0, kv.find('=')));
    CHECK(keys == std::set<std::string>{"PATH", "HOME", "LANG", "TERM", "FOO"});
    CHECK(r.stdout_data.find("hunter2") == std::string::npos);
    CHECK(r.stdout_data.find("env LANG=C\n") != std::string::npos);
    CHECK(parse(r.stdout_data)["cwd"] == "/tmp");
}

TEST_CASE("seccomp default profile: dangerous calls fail with EPERM (C006)") {
    LeakCheck leaks;
    auto r = run_ok(probe_spec({"syscalls"}));
    REQUIRE(r.exit_code == 0);
    auto rep = parse([&] {
        std::string flat;
        for (const auto& v : values_of(r.stdout_data, "syscall")) flat += v + "\n";
        return flat;
    }());
    for (const char* name : {"mount", "umount2", "unshare", "setns", "chroot", "pivot_root", "ptrace",
                             "process_vm_readv", "bpf", "keyctl", "add_key", "io_uring_setup", "perf_event_open",
                             "userfaultfd", "kexec_load", "init_module", "open_by_handle_at", "swapon", "reboot",
                             "settimeofday", "iopl", "personality_no_aslr", "socket_netlink", "socket_packet",
                             "clone_newuser"})
        CHECK_MESSAGE(rep[name] == "1", std::string(name) << " returned errno " << rep[name]);
    // uid 0 does not exist in the jail's user namespace: EINVAL, not EPERM.
    CHECK(rep["setuid0"] == "22");
    CHECK(rep["personality_query"] == "0");
    CHECK(rep["socketpair"] == "0");
    leaks.verify();
}

TEST_CASE("seccomp strict profile: no sockets, no new processes (C006)") {
    auto spec = probe_spec({"socket"});
    spec.seccomp = SeccompProfile::Strict;
    CHECK(parse(run_ok(spec).stdout_data)["socket"] == "1");
    spec.argv = {kProbeInJail, "fork"};
    CHECK(parse(run_ok(spec).stdout_data)["fork"] == "1");
    spec.seccomp = SeccompProfile::Default;
    CHECK(parse(run_ok(spec).stdout_data)["fork"] == "0");
}

// The base filter is installed once, by kiln-init, and inherited; the
// no-new-process filter is stacked on kiln-init itself, and on the program
// only under the strict profile.
TEST_CASE("seccomp filters: the program inherits the base filter, pid 1 may not start processes (C006)") {
    auto spec = probe_spec({});
    // kiln-init stacks its filter just after the program's exec: wait for it (up to 5 s).
    spec.argv = {"/bin/sh", "-c",
                 "for i in $(seq 500); do grep -q 'Seccomp_filters:.2' /proc/1/status && break; sleep 0.01; done;"
                 "grep -h ^Seccomp_filters /proc/1/status /proc/self/status"};
    CHECK(run_ok(spec).stdout_data == "Seccomp_filters:\t2\nSeccomp_filters:\t1\n");
    spec.seccomp = SeccompProfile::Strict;  // no fork: grep itself is the program
    spec.argv = {"/bin/grep", "-h", "^Seccomp_filters", "/proc/self/status"};
    CHECK(run_ok(spec).stdout_data == "Seccomp_filters:\t2\n");
}

TEST_CASE("filesystem: read-only root, writable /tmp and /workspace only (C002 C012)") {
    LeakCheck leaks;
    TempDir ws;
    const auto& caps = runtime().capabilities();
    if (is_root()) REQUIRE(::chown(ws.path().c_str(), caps.host_uid, caps.host_gid) == 0);
    auto spec = probe_spec({"write", "/usr/kiln-x"});
    spec.workspace_dir = ws.path();
    std::map<std::string, int> expect_ok = {{"/tmp/x", 1}, {"/workspace/x", 1}};
    for (const char* path : {"/usr/kiln-x", "/kiln-x", "/etc/passwd", "/etc/kiln-x", "/dev/kiln-x",
                             "/opt/kiln/probe", "/proc/sys/kernel/hostname", "/tmp/x", "/workspace/x"}) {
        spec.argv = {kProbeInJail, "write", path};
        auto r = run_ok(spec);
        std::string err = parse(r.stdout_data)["write"];
        err = err.substr(err.rfind(' ') + 1);
        if (expect_ok.count(path)) CHECK_MESSAGE(err == "0", path << ": errno " << err);
        else CHECK_MESSAGE(err != "0", path << " was writable");
    }
    CHECK(std::ifstream(ws.path() + "/x").good());
    leaks.verify();
}

TEST_CASE("filesystem: the mount table is the allowlist, system binds read-only (C002)") {
    auto r = run_ok(probe_spec({"mounts"}));
    std::istringstream in(r.stdout_data);
    std::set<std::string> points;
    for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        std::string dev, dir, type, opts;
        f >> dev >> dir >> type >> opts;
        points.insert(dir);
        bool writable_ok = dir == "/tmp" || dir == "/proc" || dir.rfind("/dev/", 0) == 0;
        if (!writable_ok) CHECK_MESSAGE(opts.rfind("ro", 0) == 0, dir << " is mounted " << opts);
    }
    for (const char* p : {"/", "/usr", "/proc", "/dev/null", "/dev/urandom", "/tmp"}) CHECK_MESSAGE(points.count(p), p << " missing");
    for (const char* p : {"/home", "/root", "/var", "/run", "/sys", "/work"}) CHECK_MESSAGE(!points.count(p), p);
}

TEST_CASE("host files planted in /etc and the home directory are invisible (C012)") {
    std::string home = ::getpwuid(::geteuid())->pw_dir;
    std::string in_home = home + "/kiln-planted-" + std::to_string(::getpid());
    std::string in_etc = "/etc/kiln-planted-" + std::to_string(::getpid());
    std::ofstream(in_home) << "secret\n";
    if (is_root()) std::ofstream(in_etc) << "secret\n";
    auto r = run_ok(probe_spec({"exists", in_home, in_etc, "/etc/shadow", "/root", "/home", "/var", "/run",
                                "/sys", "/etc/passwd", "/usr/bin/python3"}));
    std::remove(in_home.c_str());
    std::remove(in_etc.c_str());
    auto rep = parse([&] {
        std::string flat;
        for (const auto& v : values_of(r.stdout_data, "exists")) flat += v + "\n";
        return flat;
    }());
    for (const auto& p : {in_home, in_etc, std::string("/etc/shadow"), std::string("/root"), std::string("/home"),
                          std::string("/var"), std::string("/run"), std::string("/sys")})
        CHECK_MESSAGE(rep[p] == "0", p << " is visible");
    CHECK(rep["/etc/passwd"] == "1");
}

TEST_CASE("network: the host's loopback and abstract sockets are unreachable (C003)") {
    LeakCheck leaks;
    HostListener tcp;
    int port = tcp.port();

    std::string name = "kiln-test-" + std::to_string(::getpid());
    int unix_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_un u{};
    u.sun_family = AF_UNIX;
    std::memcpy(u.sun_path + 1, name.data(), name.size());
    socklen_t ulen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    REQUIRE(::bind(unix_fd, reinterpret_cast<sockaddr*>(&u), ulen) == 0);
    REQUIRE(::listen(unix_fd, 4) == 0);

    auto r1 = run_ok(probe_spec({"connect-tcp", std::to_string(port)}));
    auto r2 = run_ok(probe_spec({"connect-abstract", name}));
    CHECK(parse(r1.stdout_data)["connect"] != "0");
    CHECK(parse(r2.stdout_data)["connect"] != "0");
    CHECK(::accept(tcp.fd(), nullptr, nullptr) < 0);
    CHECK(::accept(unix_fd, nullptr, nullptr) < 0);
    ::close(unix_fd);
    leaks.verify();
}

// A port nothing on the host listens on: binding it on the host works.
int free_host_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

TEST_CASE("network: runs joining one shared namespace share its loopback; other jails and the host do not (C003)") {
    KILN_ONLY_IF(is_root(), "a shared network namespace needs a root server");
    LeakCheck leaks;
    auto ns = net::Namespace::create();
    REQUIRE_MESSAGE(ns.ok(), (ns.ok() ? "" : ns.error().what()));
    TempDir ws;
    const auto& caps = runtime().capabilities();
    REQUIRE(::chown(ws.path().c_str(), caps.host_uid, caps.host_gid) == 0);
    const std::string port = std::to_string(free_host_port());

    // A: listens on the shared loopback, says so in the workspace, serves one client.
    SandboxSpec server = probe_spec({});
    server.workspace_dir = ws.path();
    server.network_fd = (*ns)->fd();
    server.argv = {"/usr/bin/python3", "-c",
                   "import socket\n"
                   "s = socket.socket(); s.bind(('127.0.0.1', " + port + ")); s.listen(1)\n"
                   "open('/workspace/ready', 'w').close()\n"
                   "s.settimeout(15); c, _ = s.accept(); print('accepted')\n"};
    std::optional<kiln::Result<ExecResult>> served;
    std::thread serving([&] { served = runtime().run(server, {}); });
    for (int i = 0; i < 1500 && !std::ifstream(ws.path() + "/ready").good(); ++i) ::usleep(10'000);
    REQUIRE(std::ifstream(ws.path() + "/ready").good());

    // Another jail in its own namespace, and the host, find nothing there.
    CHECK(parse(run_ok(probe_spec({"connect-tcp", port})).stdout_data)["connect"] == std::to_string(ECONNREFUSED));
    int host = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(std::stoi(port)));
    CHECK(::connect(host, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0);
    ::close(host);

    // B: joins the same namespace and reaches A.
    SandboxSpec client = probe_spec({"connect-tcp", port});
    client.network_fd = (*ns)->fd();
    CHECK(parse(run_ok(client).stdout_data)["connect"] == "0");
    serving.join();
    REQUIRE(served->ok());
    CHECK((*served)->stdout_data == "accepted\n");

    // Nobody in a jail can reconfigure it: lo stays up (SIOCSIFFLAGS fails).
    SandboxSpec down = probe_spec({});
    down.network_fd = (*ns)->fd();
    down.argv = {"/usr/bin/python3", "-c",
                 "import socket, fcntl, struct\n"
                 "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                 "try:\n    fcntl.ioctl(s, 0x8914, struct.pack('16sH14x', b'lo', 0)); print('down')\n"
                 "except OSError as e:\n    print('errno', e.errno)\n"};
    CHECK(run_ok(down).stdout_data == "errno 1\n");
    leaks.verify();
}

TEST_CASE("a shared network namespace is refused to a rootless server, with the reason") {
    KILN_ONLY_IF(!is_root(), "applies to a rootless server");
    SandboxSpec spec = probe_spec({"report"});
    spec.network_fd = 0;
    auto r = runtime().run(spec, {});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("needs a root server") != std::string::npos);
}

TEST_CASE("Landlock confines the program even where mounts would allow (C010)") {
    KILN_REQUIRE_HOST(runtime().capabilities().in_force().count("C010"), "no Landlock in this kernel");
    auto r = run_ok(probe_spec({"report"}));
    // /proc is mounted read-write and a process may rename itself through
    // /proc/self/comm; only the Landlock ruleset (read-only outside /tmp,
    // /workspace and /dev) refuses the write.
    auto w = run_ok(probe_spec({"write", "/proc/self/comm"}));
    std::string err = parse(w.stdout_data)["write"];
    CHECK(err.substr(err.rfind(' ') + 1) != "0");
    CHECK(r.exit_code == 0);
}
