#include <fcntl.h>
#include <linux/sched.h>
#include <sys/syscall.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/unique_fd.hpp"
#include "sandbox/cgroup.hpp"

namespace kiln::sandbox::cgroup {

Result<std::string> read_text(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return sys_error("open " + path);
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error("read " + path);
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

HostView HostView::read() {
    HostView v;
    if (auto m = read_text("/proc/self/mounts")) v.mounts = std::move(*m);
    if (auto c = read_text("/proc/self/cgroup")) v.own_cgroups = std::move(*c);
    return v;
}

Status write_text(const std::string& path, const std::string& text) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return sys_error("open " + path);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return sys_error("write " + path, "'" + text + "'");
    return {};
}

Status remove_dir(const std::string& path) {
    // A group whose last process has just been reaped can stay busy for a
    // moment while the kernel releases it.
    for (int attempt = 0; attempt < 200; ++attempt) {
        if (::rmdir(path.c_str()) == 0 || errno == ENOENT) return {};
        if (errno != EBUSY) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(attempt < 20 ? 1 : 10));
    }
    return sys_error("rmdir " + path, "cgroup still busy");
}

pid_t clone_process(unsigned long flags, int cgroup_fd) {
    if (cgroup_fd < 0) return static_cast<pid_t>(::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr));
    clone_args args{};
    args.flags = (flags & ~0xffUL) | CLONE_INTO_CGROUP;
    args.exit_signal = flags & 0xff;
    args.cgroup = static_cast<std::uint64_t>(cgroup_fd);
    return static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
}

Result<pid_t> Group::spawn_inside(const SpawnFn& spawn) {
    pid_t pid = spawn(Entry{});
    if (pid < 0) return sys_error("clone");
    if (Status st = add(pid); !st) {
        discard_child(pid);
        return st.error();
    }
    return pid;
}

void discard_child(pid_t pid) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, __WALL) < 0 && errno == EINTR) {
    }
}

bool pid_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

void kill_procs_in(const std::string& procs_file) {
    for (int round = 0; round < 100; ++round) {
        auto text = read_text(procs_file);
        if (!text || text->empty()) return;
        std::istringstream in(*text);
        pid_t pid = 0;
        // Never the server itself, whatever a group's file says.
        while (in >> pid)
            if (pid != ::getpid()) ::kill(pid, SIGKILL);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

}  // namespace kiln::sandbox::cgroup
