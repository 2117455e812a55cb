// The probe reports from inside the jail; each test asserts one control.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
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
    auto r = run_probe(spec);
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
    auto r = run_probe(spec);
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
    auto r = run_probe(probe_spec({"syscalls"}));
    REQUIRE(r.exit_code == 0);
    auto rep = parse([&] {
        std::string flat;
        for (const auto& v : values_of(r.stdout_data, "syscall")) flat += v + "\n";
        return flat;
    }());
    for (const char* name : {"mount", "umount2", "unshare", "setns", "chroot", "pivot_root", "ptrace",
                             "process_vm_readv", "bpf", "keyctl", "add_key", "io_uring_setup", "perf_event_open",
                             "userfaultfd", "kexec_load", "init_module", "open_by_handle_at", "swapon", "reboot",
                             "settimeofday", "iopl", "personality_no_aslr", "personality_read_implies_exec",
                             "personality_no_aslr_high", "socket_netlink", "socket_packet", "clone_newuser",
                             "clone_newuser_high", "ioctl_tiocsti_high", "mbind", "set_mempolicy", "migrate_pages",
                             "move_pages", "process_madvise", "sethostname", "lsm_list_modules", "open_tree_attr"}) {
        REQUIRE_MESSAGE(rep.count(name), "the probe did not report " << name);
        CHECK_MESSAGE(rep[name] == "1", std::string(name) << " returned errno " << rep[name]);
    }
    // uid 0 does not exist in the jail's user namespace: EINVAL, not EPERM.
    CHECK(rep["setuid0"] == "22");
    for (const char* name : {"personality_query", "personality_query_high", "personality_linux32", "socketpair"}) {
        REQUIRE_MESSAGE(rep.count(name), "the probe did not report " << name);
        CHECK_MESSAGE(rep[name] == "0", std::string(name) << " returned errno " << rep[name]);
    }
    leaks.verify();
}

namespace {

// What the probe's "families" command tries: socket() and socketpair() of
// every family below 64 (AF_MAX is 46 in Linux 6.x) and of a few far
// beyond, for families a later kernel may add; each plain and with bit 32
// set. The key is the line's "socket 16 high".
struct ProbedCall {
    std::string key;
    unsigned long long family;
    bool high;
};

std::vector<ProbedCall> probed_calls() {
    std::vector<unsigned long long> families;
    for (unsigned long long f = 0; f < 64; ++f) families.push_back(f);
    for (unsigned long long f : {255ull, 0x7fffull, 0x7fffffffull, 0x80000000ull, 0xffffffffull}) families.push_back(f);
    std::vector<ProbedCall> calls;
    for (unsigned long long f : families)
        for (const char* call : {"socket", "socketpair"})
            for (bool high : {false, true})
                calls.push_back({std::string(call) + " " + std::to_string(f) + (high ? " high" : " plain"), f, high});
    return calls;
}

// "socket 16 high" -> errno, from the probe's "socket|socketpair <family> <plain|high> <errno>" lines.
std::map<std::string, std::string> family_answers(const std::string& out) {
    std::map<std::string, std::string> answers;
    for (const char* call : {"socket", "socketpair"})
        for (const auto& v : values_of(out, call)) answers[call + (" " + v.substr(0, v.rfind(' ')))] = v.substr(v.rfind(' ') + 1);
    return answers;
}

std::string answer_of(const std::map<std::string, std::string>& answers, const std::string& key) {
    auto it = answers.find(key);
    REQUIRE_MESSAGE(it != answers.end(), "the probe did not report " << key);
    return it->second;
}

}  // namespace

// The kernel reads socket()'s family as an int: a filter that compared
// (1<<32)|AF_NETLINK with AF_NETLINK let it pass, and the kernel made a
// netlink socket. Every family but these three is refused, so are families
// later kernels add, whatever is set above bit 31.
TEST_CASE("seccomp default profile: sockets of AF_UNIX, AF_INET, AF_INET6 only, whatever the high bits say (C003 C006)") {
    LeakCheck leaks;
    auto r = run_probe(probe_spec({"families"}));
    REQUIRE(r.exit_code == 0);
    auto answers = family_answers(r.stdout_data);
    const std::set<unsigned long long> allowed = {AF_UNIX, AF_INET, AF_INET6};
    for (const ProbedCall& c : probed_calls()) {
        const std::string err = answer_of(answers, c.key);
        // An allowed family with high bits set is refused too (see
        // sandbox/seccomp_rules.cpp): the filter compares all 64 bits.
        if (!allowed.count(c.family) || c.high) CHECK_MESSAGE(err == "1", c.key << " answered errno " << err << ", not EPERM");
        else CHECK_MESSAGE(err != "1", c.key << " was refused");
    }
    // The allowed families work, through the filter and the kernel.
    for (const std::string key : {"socket 1 plain", "socket 2 plain", "socket 10 plain", "socketpair 1 plain"}) {
        const std::string err = answer_of(answers, key);
        CHECK_MESSAGE(err == "0", key << " answered errno " << err);
    }
    leaks.verify();
}

TEST_CASE("seccomp strict profile: no socket of any family, whatever the high bits say (C003 C006)") {
    LeakCheck leaks;
    auto spec = probe_spec({"families"});
    spec.seccomp = SeccompProfile::Strict;
    auto r = run_probe(spec);
    REQUIRE(r.exit_code == 0);
    auto answers = family_answers(r.stdout_data);
    for (const ProbedCall& c : probed_calls()) {
        const std::string err = answer_of(answers, c.key);
        CHECK_MESSAGE(err == "1", c.key << " answered errno " << err << ", not EPERM");
    }
    leaks.verify();
}

TEST_CASE("seccomp strict profile: no sockets, no new processes (C006)") {
    auto spec = probe_spec({"socket"});
    spec.seccomp = SeccompProfile::Strict;
    CHECK(parse(run_probe(spec).stdout_data)["socket"] == "1");
    spec.argv = {kProbeInJail, "fork"};
    CHECK(parse(run_probe(spec).stdout_data)["fork"] == "1");
    spec.seccomp = SeccompProfile::Default;
    CHECK(parse(run_probe(spec).stdout_data)["fork"] == "0");
}

// The base filter is installed once, by kiln-init, and inherited; the
// no-new-process filter is stacked on kiln-init itself, and on the program
// only under the strict profile.
TEST_CASE("seccomp filters: the program inherits the base filter, pid 1 may not start processes (C006)") {
    auto spec = probe_spec({});
    // kiln-init stacks its filter just after the program's exec: wait for it (up to 5 s).
    std::string init_done = seccomp_filters_line(2);
    init_done.pop_back();
    spec.argv = {"/bin/sh", "-c",
                 "for i in $(seq 500); do grep -qx '" + init_done + "' /proc/1/status && break; sleep 0.01; done;"
                 "grep -h ^Seccomp_filters /proc/1/status /proc/self/status"};
    CHECK(run_probe(spec).stdout_data == seccomp_filters_line(2) + seccomp_filters_line(1));
    spec.seccomp = SeccompProfile::Strict;  // no fork: grep itself is the program
    spec.argv = {"/bin/grep", "-h", "^Seccomp_filters", "/proc/self/status"};
    CHECK(run_probe(spec).stdout_data == seccomp_filters_line(2));
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
        auto r = run_probe(spec);
        std::string err = parse(r.stdout_data)["write"];
        err = err.substr(err.rfind(' ') + 1);
        if (expect_ok.count(path)) CHECK_MESSAGE(err == "0", path << ": errno " << err);
        else CHECK_MESSAGE(err != "0", path << " was writable");
    }
    CHECK(std::ifstream(ws.path() + "/x").good());
    leaks.verify();
}

TEST_CASE("filesystem: the mount table is the allowlist, system binds read-only (C002)") {
    auto r = run_probe(probe_spec({"mounts"}));
    std::istringstream in(r.stdout_data);
    std::set<std::string> points;
    for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        std::string dev, dir, type, opts;
        f >> dev >> dir >> type >> opts;
        points.insert(dir);
        bool writable_ok = dir == "/tmp" || dir.rfind("/dev/", 0) == 0;
        if (!writable_ok) CHECK_MESSAGE(opts.rfind("ro", 0) == 0, dir << " is mounted " << opts);
    }
    for (const char* p : {"/", "/usr", "/proc", "/dev/null", "/dev/urandom", "/tmp"}) CHECK_MESSAGE(points.count(p), p << " missing");
    // On an image, /root, /var, /run are the image's (read-only, checked above); the host's never are.
    for (const char* p : {"/home", "/root", "/var", "/run", "/sys", "/work"})
        if (!on_image() || std::string(p) == "/sys" || std::string(p) == "/work") CHECK_MESSAGE(!points.count(p), p);
}

namespace {

// What the probe's "read" reported for each path: {errno, bytes}.
std::map<std::string, std::pair<int, long>> read_answers(const std::string& out, const std::vector<std::string>& paths) {
    std::map<std::string, std::pair<int, long>> answers;
    for (const auto& v : values_of(out, "read")) {
        std::istringstream f(v);
        std::string path;
        int err = -1;
        long bytes = -1;
        f >> path >> err >> bytes;
        answers[path] = {err, bytes};
    }
    for (const auto& p : paths) REQUIRE_MESSAGE(answers.count(p), "the probe did not report reading " << p);
    return answers;
}

}  // namespace

TEST_CASE("/proc: kernel symbols, keys, config and timers are masked, the program's own files are not (C012)") {
    LeakCheck leaks;
    const std::vector<std::string> masked = {"/proc/kallsyms", "/proc/keys", "/proc/config.gz", "/proc/kcore",
                                             "/proc/sched_debug", "/proc/timer_list", "/proc/interrupts",
                                             "/proc/modules", "/proc/latency_stats", "/proc/timer_stats"};
    const std::vector<std::string> readable = {"/proc/self/status", "/proc/self/maps", "/proc/cpuinfo",
                                               "/proc/meminfo"};
    std::vector<std::string> args = {"read"};
    args.insert(args.end(), masked.begin(), masked.end());
    args.insert(args.end(), readable.begin(), readable.end());
    auto r = run_probe(probe_spec(args));
    REQUIRE(r.exit_code == 0);
    auto answers = read_answers(r.stdout_data, {args.begin() + 1, args.end()});
    // Each exists where the kernel has it (kallsyms, config.gz and
    // timer_list do here); none may give a byte.
    for (const auto& p : masked) {
        auto [err, bytes] = answers[p];
        CHECK_MESSAGE((err != 0 || bytes == 0), p << " gave " << bytes << " bytes");
    }
    for (const auto& p : readable)
        CHECK_MESSAGE((answers[p].first == 0 && answers[p].second > 0), p << ": errno " << answers[p].first);

    // Masked directories are empty.
    std::vector<std::string> entries = {"exists"};
    for (const char* dir : {"/proc/acpi", "/proc/asound", "/proc/scsi"}) {
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(dir, ec)) entries.push_back(e.path().string());
    }
    if (entries.size() > 1) {
        auto listed = run_probe(probe_spec(entries));
        REQUIRE(listed.exit_code == 0);
        auto seen = parse([&] {
            std::string flat;
            for (const auto& v : values_of(listed.stdout_data, "exists")) flat += v + "\n";
            return flat;
        }());
        for (std::size_t i = 1; i < entries.size(); ++i) {
            REQUIRE_MESSAGE(seen.count(entries[i]), "the probe did not report " << entries[i]);
            CHECK_MESSAGE(seen[entries[i]] == "0", entries[i] << " is visible");
        }
    }
    leaks.verify();
}

TEST_CASE("host files planted in /etc and the home directory are invisible (C012)") {
    std::string home = ::getpwuid(::geteuid())->pw_dir;
    std::string in_home = home + "/kiln-planted-" + std::to_string(::getpid());
    std::string in_etc = "/etc/kiln-planted-" + std::to_string(::getpid());
    std::ofstream(in_home) << "secret\n";
    if (is_root()) std::ofstream(in_etc) << "secret\n";
    auto r = run_probe(probe_spec({"exists", in_home, in_etc, "/etc/shadow", "/root", "/home", "/var", "/run",
                                "/sys", "/etc/passwd", "/usr/bin/python3"}));
    std::remove(in_home.c_str());
    std::remove(in_etc.c_str());
    auto rep = parse([&] {
        std::string flat;
        for (const auto& v : values_of(r.stdout_data, "exists")) flat += v + "\n";
        return flat;
    }());
    std::vector<std::string> hidden = {in_home, in_etc, "/sys"};
    // An image's root has its own /etc/shadow, /root, /home, /var and /run;
    // what was planted on the host above must still be invisible.
    if (!on_image()) hidden.insert(hidden.end(), {"/etc/shadow", "/root", "/home", "/var", "/run"});
    for (const auto& p : hidden) CHECK_MESSAGE(rep[p] == "0", p << " is visible");
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

    auto r1 = run_probe(probe_spec({"connect-tcp", std::to_string(port)}));
    auto r2 = run_probe(probe_spec({"connect-abstract", name}));
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

KILN_TEST_CASE_IF("network: runs joining one shared namespace share its loopback; other jails and the host do not (C003)",
                  is_root(), "a shared network namespace needs a root server") {
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
    CHECK(parse(run_probe(probe_spec({"connect-tcp", port})).stdout_data)["connect"] == std::to_string(ECONNREFUSED));
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
    CHECK(parse(run_probe(client).stdout_data)["connect"] == "0");
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
    CHECK(run_probe(down).stdout_data == "errno 1\n");
    leaks.verify();
}

KILN_TEST_CASE_IF("a shared network namespace is refused to a rootless server, with the reason",
                  !is_root(), "applies to a rootless server") {
    SandboxSpec spec = probe_spec({"report"});
    spec.network_fd = 0;
    auto r = runtime().run(spec, {});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("needs a root server") != std::string::npos);
}

TEST_CASE("Landlock confines the program even where mounts would allow (C010)") {
    KILN_REQUIRE_HOST(runtime().capabilities().in_force().count("C010"), "no Landlock in this kernel");
    // /tmp is a writable tmpfs, and a 0:0 character device (an overlayfs
    // "whiteout") needs no capability to create: only the Landlock ruleset,
    // which grants no device creation anywhere, refuses it.
    SandboxSpec spec = probe_spec({});
    spec.argv = {"/usr/bin/python3", "-c",
                 "import os, stat\n"
                 "try:\n    os.mknod('/tmp/w', stat.S_IFCHR | 0o600, 0); print('made')\n"
                 "except OSError as e:\n    print('errno', e.errno)\n"};
    auto r = run_probe(spec);
    CHECK(r.exit_code == 0);
    CHECK(r.stdout_data == "errno 13\n");
}
