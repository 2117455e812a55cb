// The native runtime: Kiln's own jail, run from the server's threads.
//
// run() prepares everything in the parent (mount list, id maps, seccomp
// BPF, rlimits, Landlock rules, argv/env), clones the jail's setup process
// into new user, pid, mount, ipc and uts namespaces (it makes or is given
// its network namespace) and into the run's cgroup, writes its id maps,
// releases it, waits until it has exec'd
// kiln-init (the jail's pid 1), then feeds stdin and drains
// stdout/stderr until it exits, the deadline passes or the caller cancels.
// The jail's processes all live in its pid namespace, so killing the init
// kills them all; the cgroup is emptied and removed before run() returns.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <pthread.h>
#include <mutex>
#include <sstream>

#include "common/unique_fd.hpp"
#include "sandbox/cgroup.hpp"
#include "sandbox/hints.hpp"
#include "sandbox/jail.hpp"
#include "sandbox/net.hpp"
#include "sandbox/runtime.hpp"
#include "sandbox/seccomp.hpp"

namespace kiln::sandbox {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

// The network namespace is not among them: a fresh one is made by the
// child itself (jail.cpp, jail_main), while this thread writes its id maps.
constexpr unsigned long kNamespaces = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
constexpr const char* kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The setup child's stack while it shares our memory (CLONE_VM), with a
// guard page below it. Freed only after the child has exec'd or died.
class ChildStack {
public:
    static constexpr std::size_t kSize = 256 * 1024, kGuard = 4096;
    ChildStack() = default;
    ChildStack(const ChildStack&) = delete;
    ChildStack& operator=(const ChildStack&) = delete;
    ~ChildStack() {
        if (base_ != MAP_FAILED) ::munmap(base_, kSize + kGuard);
    }
    Status allocate() {
        base_ = ::mmap(nullptr, kSize + kGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (base_ == MAP_FAILED) return sys_error("mmap", "the jail setup's stack");
        if (::mprotect(base_, kGuard, PROT_NONE) != 0) return sys_error("mprotect", "stack guard page");
        return {};
    }
    void* top() const { return static_cast<char*>(base_) + kSize + kGuard; }

private:
    void* base_ = MAP_FAILED;
};

int jail_entry(void* plan) { jail_main(*static_cast<const JailPlan*>(plan)); }

// AddressSanitizer keeps shadow memory for the whole address space: a
// CLONE_VM child's instrumented frames would write into the server's shadow,
// and a reused stack's stale shadow makes false reports in the child. In
// sanitizer builds the setup child gets a copy of the memory instead.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSetupSharesMemory = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSetupSharesMemory = false;
#else
constexpr bool kSetupSharesMemory = true;
#endif
#else
constexpr bool kSetupSharesMemory = true;
#endif

// A failed clone into new namespaces, with what to check next (hints.hpp).
Error clone_failure(Error e) {
    if (e.step != "clone") return e;  // the cgroup failed before the clone
    const char* hint = hint_for(KILN_HINT_NAMESPACE, e.err);
    e.step = "clone new user, pid, mount, ipc and uts namespaces";
    e.message = hint ? hint : "";
    return e;
}

struct Pipe {
    UniqueFd read, write;
};

Result<Pipe> make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return sys_error("pipe2");
    return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Kills and reaps the jail's init on every early return (crun's cleanup_pid).
class ChildGuard {
public:
    explicit ChildGuard(pid_t pid) : pid_(pid) {}
    ChildGuard(const ChildGuard&) = delete;
    ChildGuard& operator=(const ChildGuard&) = delete;
    ~ChildGuard() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        int status;
        while (::waitpid(pid_, &status, __WALL) < 0 && errno == EINTR) {
        }
    }
    pid_t pid() const { return pid_; }
    void kill() const {
        if (pid_ > 0) ::kill(pid_, SIGKILL);
    }
    // Reaps the exited init; returns its status and resource usage.
    int reap(rusage& usage) {
        int status = 0;
        while (::wait4(pid_, &status, __WALL, &usage) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        return status;
    }

private:
    pid_t pid_;
};

std::string env_value(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

Status build_env(const SandboxSpec& spec, JailPlan& plan) {
    // Allowlist only; nothing of the server's environment (tokens, keys) leaks (C012, C013).
    std::vector<std::string> env = {std::string("PATH=") + kPath, "HOME=/tmp",
                                    "LANG=" + env_value("LANG", "C.UTF-8"), "TERM=" + env_value("TERM", "dumb")};
    for (const auto& kv : spec.env) {
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) return make_error("sandbox env", "'" + kv + "' is not KEY=VALUE", EINVAL);
        std::string key = kv.substr(0, eq + 1);
        env.erase(std::remove_if(env.begin(), env.end(), [&](const std::string& e) { return e.rfind(key, 0) == 0; }),
                  env.end());
        env.push_back(kv);
    }
    std::string path = kPath;
    for (const auto& e : env)
        if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
    std::istringstream dirs(path);
    for (std::string d; std::getline(dirs, d, ':');)
        if (!d.empty()) plan.path_dirs.push_back(d);
    plan.env_storage = std::move(env);
    return {};
}

struct Capture {
    std::string& data;
    bool& truncated;
    std::uint64_t& total;
    std::uint64_t cap;
    bool is_stderr;
};

// One run's parent side: owns the descriptors, the cgroup and the clock.
class Run {
public:
    Run(const SandboxSpec& spec, const RunHooks& hooks) : spec_(spec), hooks_(hooks) {}

    Result<ExecResult> execute(JailPlan& plan, cgroup::Manager* cgroups, const std::string& run_id);
    // Runtime::start: the jail is set up as for execute(), but this returns
    // once the program has been exec'd, with its pipes open (NativeLiveJail).
    Status start_live(JailPlan& plan, cgroup::Manager* cgroups, const std::string& run_id);

private:
    friend class NativeLiveJail;
    // A live jail's setup gets this long at most: its limits.timeout is a
    // CPU budget for its whole life, not a deadline for its start.
    static constexpr milliseconds kLiveSetupLimit{30'000};
    Clock::time_point setup_deadline() const {
        return t_start_ + (live_ ? std::min(spec_.limits.timeout, kLiveSetupLimit) : spec_.limits.timeout);
    }
    Status wait_for_program();
    Status make_pipes(JailPlan& plan);
    Status start(JailPlan& plan, cgroup::Manager* cgroups, const std::string& run_id);
    Status pump();
    void drain_after_exit();
    bool read_into(int fd, Capture& cap);
    void feed_stdin();
    Capture capture(bool is_stderr) {
        return is_stderr ? Capture{result_.stderr_data, result_.stderr_truncated, result_.stderr_bytes,
                                   spec_.limits.output_cap_bytes, true}
                         : Capture{result_.stdout_data, result_.stdout_truncated, result_.stdout_bytes,
                                   spec_.limits.output_cap_bytes, false};
    }
    std::optional<Error> child_error();
    Status wait_for_setup();
    void end_jail();
    void finish(ExecResult& r, int init_status, const rusage& usage);

    const SandboxSpec& spec_;
    const RunHooks& hooks_;
    ExecResult result_;
    Pipe stdin_, stdout_, stderr_, sync_, setup_, error_, status_;
    ChildStack stack_;  // before child_: the child is reaped before its stack goes
    UniqueFd pidfd_, stop_fd_;
    std::unique_ptr<cgroup::Group> group_;
    std::unique_ptr<ChildGuard> child_;
    std::size_t stdin_sent_ = 0;
    bool error_eof_ = false;
    bool killed_init_ = false;  // end_jail() had to SIGKILL kiln-init
    bool live_ = false;         // started by start_live(): stdin stays open
    std::optional<Error> setup_error_;
    Clock::time_point t_start_, t_exec_, t_exit_;
};

Status Run::make_pipes(JailPlan& plan) {
    for (Pipe* p : {&stdin_, &stdout_, &stderr_, &sync_, &setup_, &error_, &status_}) {
        auto made = make_pipe();
        if (!made) return made.error();
        *p = std::move(*made);
    }
    plan.fds[KILN_FD_STDIN] = stdin_.read.get();
    plan.fds[KILN_FD_STDOUT] = stdout_.write.get();
    plan.fds[KILN_FD_STDERR] = stderr_.write.get();
    plan.fds[KILN_FD_SYNC] = sync_.read.get();
    plan.fds[KILN_FD_SETUP_ERROR] = setup_.write.get();
    plan.fds[KILN_FD_EXEC_ERROR] = error_.write.get();
    plan.fds[KILN_FD_STATUS] = status_.write.get();
    return {};
}

Status Run::start(JailPlan& plan, cgroup::Manager* cgroups, const std::string& run_id) {
    if (Status st = make_pipes(plan); !st) return st;
    if (cgroups) {
        auto g = cgroups->create(run_id, spec_.limits);
        if (!g) return g.error().wrap("creating the run's cgroup");
        group_ = std::move(*g);
    }
    // The setup child shares our memory (no copy of the server's address
    // space to make and tear down, no copy-on-write faults in the server
    // while the jail runs) until it execs kiln-init; this thread waits for
    // that in wait_for_setup(). It starts with every signal blocked, so
    // neither it nor we see EINTR while errno is shared. A v2 group needs
    // clone3 (CLONE_INTO_CGROUP), which glibc cannot start on a new stack:
    // that child gets a copy instead, as in sanitizer builds.
    if (kSetupSharesMemory) {
        if (Status st = stack_.allocate(); !st) return st;
    }
    auto clone_jail = [&](const cgroup::Group::Entry& entry) -> pid_t {
        plan.cgroup_entry = entry;
        if (entry.cgroup_fd >= 0 || !kSetupSharesMemory) {
            pid_t pid = cgroup::clone_process(kNamespaces | SIGCHLD, entry.cgroup_fd);
            if (pid == 0) jail_main(plan);
            return pid;
        }
        return ::clone(jail_entry, stack_.top(), static_cast<int>(kNamespaces | CLONE_VM | SIGCHLD), &plan);
    };
    // A shared network namespace is joined by this thread for the clone
    // only; the child inherits it (net.hpp).
    net::ThreadIn in_network;
    if (!plan.fresh_network) {
        if (Status st = in_network.join(spec_.network_fd); !st) return st;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    struct RestoreMask {
        sigset_t mask;
        ~RestoreMask() { pthread_sigmask(SIG_SETMASK, &mask, nullptr); }
    } restore{old};
    // With a cgroup, the child starts inside it, before its first step.
    pid_t pid = -1;
    if (group_) {
        auto spawned = group_->spawn_inside(clone_jail);
        if (!spawned) return clone_failure(spawned.error()).wrap("starting the jail in its cgroup");
        pid = *spawned;
    } else {
        pid = clone_jail(cgroup::Group::Entry{});
        if (pid < 0) return clone_failure(sys_error("clone"));
    }
    child_ = std::make_unique<ChildGuard>(pid);
    if (Status st = in_network.leave(); !st) return st;
    for (UniqueFd* fd :
         {&stdin_.read, &stdout_.write, &stderr_.write, &sync_.read, &setup_.write, &error_.write, &status_.write})
        fd->reset();
    pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd_) return sys_error("pidfd_open");
    if (Status st = user::write_maps(pid, plan.user); !st) return st.error().wrap("writing the jail's id maps");
    // Release the child: its ids are mapped and its limits apply from its first step.
    if (::write(sync_.write.get(), "g", 1) != 1) return sys_error("write", "sync pipe");
    sync_.write.reset();
    if (Status st = wait_for_setup(); !st) return st;
    for (int fd : {stdout_.read.get(), stderr_.read.get(), stdin_.write.get()})
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (spec_.stdin_data.empty() && !live_) stdin_.write.reset();
    return {};
}

bool Run::read_into(int fd, Capture& cap) {
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno == EAGAIN;  // still open
        if (n == 0) return false;           // EOF
        cap.total += static_cast<std::uint64_t>(n);
        std::size_t room = cap.data.size() < cap.cap ? cap.cap - cap.data.size() : 0;
        std::size_t keep = std::min<std::size_t>(room, static_cast<std::size_t>(n));
        if (keep < static_cast<std::size_t>(n)) cap.truncated = true;
        if (keep > 0) {
            cap.data.append(buf, keep);
            if (hooks_.on_output) hooks_.on_output(std::string_view(buf, keep), cap.is_stderr);
        }
    }
}

void Run::feed_stdin() {
    // Writing to a pipe the program closed raises SIGPIPE in this thread;
    // block it and consume it so the server survives.
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    const std::string& data = spec_.stdin_data;
    ssize_t n = ::write(stdin_.write.get(), data.data() + stdin_sent_, data.size() - stdin_sent_);
    if (n > 0) stdin_sent_ += static_cast<std::size_t>(n);
    if ((n < 0 && errno != EAGAIN && errno != EINTR) || stdin_sent_ == data.size()) stdin_.write.reset();
    if (n < 0 && errno == EPIPE) {
        timespec zero{0, 0};
        ::sigtimedwait(&pipe_set, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

std::optional<Error> Run::child_error() {
    ChildError e;
    ssize_t n = ::read(error_.read.get(), &e, sizeof e);
    if (n == static_cast<ssize_t>(sizeof e)) return child_failure(e);
    return std::nullopt;
}

// Until the setup child execs kiln-init it may share our memory, errno
// included: wait for its error pipe with signals blocked (no EINTR) and
// decide from return values alone. EOF: kiln-init runs; a record: setup
// failed at the step it names. A setup that hangs (a dead network
// filesystem under a bind, say) is killed at the run's deadline or on
// cancellation, like the program would be; pump() then reports it.
Status Run::wait_for_setup() {
    ChildError e;
    std::size_t got = 0;
    const auto deadline = setup_deadline();
    bool killed = false;
    for (int failures = 0; got < sizeof e && failures < 100;) {
        pollfd fds[2] = {{setup_.read.get(), POLLIN, 0}, {killed || !stop_fd_ ? -1 : stop_fd_.get(), POLLIN, 0}};
        auto left = duration_cast<milliseconds>(deadline - Clock::now()).count();
        int rc = ::poll(fds, 2, killed ? -1 : static_cast<int>(std::max<long long>(0, left) + 1));
        if (rc < 0) {
            ++failures;
            continue;
        }
        if (!killed && (rc == 0 || fds[1].revents)) {
            child_->kill();  // its exit closes the pipe: EOF below
            killed = true;
            continue;
        }
        ssize_t n = ::read(setup_.read.get(), reinterpret_cast<char*>(&e) + got, sizeof e - got);
        if (n == 0) break;
        if (n < 0) ++failures;
        else got += static_cast<std::size_t>(n);
    }
    setup_.read.reset();
    if (got != sizeof e) return {};
    return child_failure(e);
}

// A live jail reports an exec failure of its program at start, not on the
// first request: wait for the exec error pipe's EOF (or record) here.
Status Run::wait_for_program() {
    pollfd started{error_.read.get(), POLLIN, 0};
    auto left = duration_cast<milliseconds>(setup_deadline() - Clock::now()).count();
    int rc = 0;
    while ((rc = ::poll(&started, 1, static_cast<int>(std::max<long long>(0, left)))) < 0 && errno == EINTR) {
    }
    if (rc < 0) return sys_error("poll", "the live jail's exec error pipe");
    if (rc == 0) {
        child_->kill();
        return make_error("live jail", "the program did not start within " + std::to_string(kLiveSetupLimit.count() / 1000) + " s",
                          ETIMEDOUT);
    }
    error_eof_ = true;
    t_exec_ = Clock::now();
    if (auto e = child_error()) return *e;
    return {};
}

Status Run::start_live(JailPlan& plan, cgroup::Manager* cgroups, const std::string& run_id) {
    live_ = true;
    t_start_ = Clock::now();
    if (Status st = start(plan, cgroups, run_id); !st) return st;
    return wait_for_program();
}

// At the deadline or on cancellation. Once the program runs, kiln-init ends
// the jail itself on KILN_SIGNAL_END: it kills and reaps every process, so
// their CPU time is in its rusage (the only CPU figure without a cgroup;
// processes the kernel kills along with a killed init are not in it). If it
// has not exited within 200 ms, or the program has not started, SIGKILL.
void Run::end_jail() {
    if (error_eof_ && ::kill(child_->pid(), KILN_SIGNAL_END) == 0) {
        pollfd exited{pidfd_.get(), POLLIN, 0};
        if (::poll(&exited, 1, 200) == 1) return;
    }
    killed_init_ = true;
    child_->kill();
}

// The main loop: output, stdin, the init's exit, the deadline, cancellation.
Status Run::pump() {
    Capture out = capture(false), err = capture(true);
    bool out_open = true, err_open = true;
    const auto deadline = t_start_ + spec_.limits.timeout;
    auto next_progress = t_start_ + milliseconds(250);
    for (;;) {
        pollfd fds[6] = {{out_open ? stdout_.read.get() : -1, POLLIN, 0},
                         {err_open ? stderr_.read.get() : -1, POLLIN, 0},
                         {stdin_.write.valid() ? stdin_.write.get() : -1, POLLOUT, 0},
                         {error_eof_ ? -1 : error_.read.get(), POLLIN, 0},
                         {pidfd_.get(), POLLIN, 0},
                         {stop_fd_.valid() ? stop_fd_.get() : -1, POLLIN, 0}};
        auto now = Clock::now();
        if (now >= deadline) {
            result_.timed_out = true;
            end_jail();
            return {};
        }
        auto wake = std::min(deadline, hooks_.on_progress ? next_progress : deadline);
        int timeout_ms = static_cast<int>(std::max<long>(1, duration_cast<milliseconds>(wake - now).count() + 1));
        int rc = ::poll(fds, 6, timeout_ms);
        if (rc < 0 && errno != EINTR) return sys_error("poll");
        if (fds[0].revents) out_open = read_into(fds[0].fd, out);
        if (fds[1].revents) err_open = read_into(fds[1].fd, err);
        if (fds[2].revents) feed_stdin();
        if (fds[3].revents) {
            setup_error_ = child_error();
            error_eof_ = true;
            t_exec_ = Clock::now();
            if (setup_error_) {
                child_->kill();
                return {};
            }
        }
        if (fds[5].revents) {
            result_.cancelled = true;
            end_jail();
            return {};
        }
        if (fds[4].revents) return {};
        if (hooks_.on_progress && Clock::now() >= next_progress) {
            next_progress += milliseconds(250);
            hooks_.on_progress(Progress{duration_cast<milliseconds>(Clock::now() - t_start_), result_.stdout_bytes,
                                        result_.stderr_bytes});
        }
    }
}

// Once the init is gone so is every process of the jail; what they wrote is
// still in the pipes. Another run's child may hold a copy of a write end for
// a few microseconds (between its clone and its close_range), hence the bound.
void Run::drain_after_exit() {
    Capture out = capture(false), err = capture(true);
    bool out_open = true, err_open = true;
    auto until = Clock::now() + milliseconds(500);
    while ((out_open || err_open) && Clock::now() < until) {
        pollfd fds[2] = {{out_open ? stdout_.read.get() : -1, POLLIN, 0}, {err_open ? stderr_.read.get() : -1, POLLIN, 0}};
        if (::poll(fds, 2, 50) < 0 && errno != EINTR) break;
        if (fds[0].revents) out_open = read_into(fds[0].fd, out);
        if (fds[1].revents) err_open = read_into(fds[1].fd, err);
    }
}

void Run::finish(ExecResult& r, int init_status, const rusage& usage) {
    int program_status = 0;
    bool have_status = ::read(status_.read.get(), &program_status, sizeof program_status) == sizeof program_status;
    if (have_status && WIFEXITED(program_status)) r.exit_code = WEXITSTATUS(program_status);
    else if (have_status && WIFSIGNALED(program_status)) r.signal = WTERMSIG(program_status);
    else if (WIFSIGNALED(init_status)) r.signal = WTERMSIG(init_status);  // the init itself was killed
    else r.exit_code = WIFEXITED(init_status) ? WEXITSTATUS(init_status) : -1;
    r.cpu = milliseconds((usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 +
                         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000);
    // Without a cgroup the best figure is the largest single process's RSS.
    r.peak_memory_bytes = static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;
    if (group_) {
        cgroup::Stats s = group_->stats();
        if (s.have_cpu) r.cpu = duration_cast<milliseconds>(s.cpu);
        if (s.peak_memory_bytes) r.peak_memory_bytes = s.peak_memory_bytes;
        r.oom_killed = s.oom_killed;
    } else if (killed_init_) {
        // The rusage lacks the processes the kernel killed along with the init.
        r.notes.push_back("cpu_ms is too low: it counts only processes that ended before the jail was killed");
    }
}

Result<ExecResult> Run::execute(JailPlan& plan, cgroup::Manager* cgroups, const std::string& run_id) {
    t_start_ = Clock::now();
    if (hooks_.stop.stop_possible()) stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    std::stop_callback on_stop(hooks_.stop, [this] {
        if (stop_fd_) {
            std::uint64_t one = 1;
            (void)!::write(stop_fd_.get(), &one, sizeof one);
        }
    });
    if (Status st = start(plan, cgroups, run_id); !st) return st.error();
    if (Status st = pump(); !st) return st.error();
    rusage usage{};
    int init_status = child_->reap(usage);
    t_exit_ = Clock::now();
    if (!error_eof_) {
        setup_error_ = child_error();
        if (t_exec_ == Clock::time_point{}) t_exec_ = t_exit_;
    }
    if (setup_error_) return *setup_error_;
    drain_after_exit();
    finish(result_, init_status, usage);
    if (group_) {
        if (Status st = group_->remove(); !st) result_.notes.push_back("cgroup teardown: " + st.error().what());
    }
    auto t_end = Clock::now();
    result_.duration = duration_cast<milliseconds>(t_exit_ - t_start_);
    result_.timings.setup = duration_cast<microseconds>(t_exec_ - t_start_);
    result_.timings.run = duration_cast<microseconds>(t_exit_ - t_exec_);
    result_.timings.teardown = duration_cast<microseconds>(t_end - t_exit_);
    return std::move(result_);
}

// The parent side of a live jail: a Run started by start_live() and never
// pumped. Its spec and plan live here because the Run refers to them.
class NativeLiveJail final : public LiveJail {
public:
    NativeLiveJail(const SandboxSpec& spec, JailPlan plan) : spec_(spec), plan_(std::move(plan)), run_(spec_, hooks_) {}
    Status start(cgroup::Manager* cgroups, const std::string& run_id) { return run_.start_live(plan_, cgroups, run_id); }

    int stdin_fd() const override { return run_.stdin_.write.get(); }
    int stdout_fd() const override { return run_.stdout_.read.get(); }
    int stderr_fd() const override { return run_.stderr_.read.get(); }
    int ended_fd() const override { return run_.pidfd_.get(); }
    bool alive() const override {
        if (ended_ || !run_.child_) return false;
        pollfd p{run_.pidfd_.get(), POLLIN, 0};
        return ::poll(&p, 1, 0) == 0;
    }
    Status interrupt() override {
        if (!alive()) return make_error("interrupt", "the jail has ended", ESRCH);
        if (::kill(run_.child_->pid(), SIGINT) != 0) return sys_error("kill SIGINT", "the live jail's init");
        return {};
    }
    void kill() override {
        if (!ended_ && run_.child_) run_.child_->kill();
    }
    LiveStats stats() const override {
        LiveStats out;
        if (!run_.group_) return out;
        cgroup::Stats s = run_.group_->stats();
        out.have_cgroup = true;
        out.memory_bytes = s.memory_bytes;
        out.peak_memory_bytes = s.peak_memory_bytes;
        out.cpu = duration_cast<milliseconds>(s.cpu);
        out.oom_killed = s.oom_killed;
        return out;
    }
    ExecResult end() override {
        if (ended_) return result_;
        kill();  // a no-op when it has ended by itself
        ended_ = true;
        rusage usage{};
        int init_status = run_.child_->reap(usage);
        run_.finish(result_, init_status, usage);
        if (run_.group_) {
            if (Status st = run_.group_->remove(); !st) result_.notes.push_back("cgroup teardown: " + st.error().what());
        }
        return result_;
    }

private:
    SandboxSpec spec_;
    RunHooks hooks_;
    JailPlan plan_;
    Run run_;
    bool ended_ = false;
    ExecResult result_;
};

// A RunGroup over a cgroup::Group (removed with it), or over nothing when
// there is no cgroup.
class NativeRunGroup final : public RunGroup {
public:
    NativeRunGroup(std::string name, std::unique_ptr<cgroup::Group> group)
        : name_(std::move(name)), group_(std::move(group)) {}
    const std::string& name() const override { return name_; }
    std::uint64_t memory_bytes() const override { return group_ ? group_->stats().memory_bytes : 0; }
    bool enforced() const override { return group_ != nullptr; }

private:
    std::string name_;
    std::unique_ptr<cgroup::Group> group_;
};

bool safe_group_name(const std::string& name) {
    if (name.empty() || name.size() > 128 || name.rfind("run-", 0) == 0) return false;
    return std::all_of(name.begin(), name.end(),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; });
}

class NativeRuntime final : public Runtime {
public:
    std::string_view name() const override { return "native"; }
    const HostCapabilities& capabilities() const override { return caps_; }
    Result<ExecResult> run(const SandboxSpec& spec, const RunHooks& hooks) override;
    Result<std::unique_ptr<LiveJail>> start(const SandboxSpec& spec) override;
    Result<std::unique_ptr<RunGroup>> make_group(const std::string& name, std::uint64_t memory_limit) override;

    Status init(const NativeOptions& options);

private:
    Result<JailPlan> plan_for(const SandboxSpec& spec) const;
    Result<std::string> run_id_for(const SandboxSpec& spec, const char* kind);
    void describe_controls(bool probe_ok, const std::string& probe_detail);

    HostCapabilities caps_;
    std::unique_ptr<cgroup::Manager> cgroups_;
    std::string cgroup_error_;
    UniqueFd base_filter_, no_new_process_filter_;  // sealed memfds (seccomp.hpp), shared by every jail
    caps::Plan caps_plan_;
    ucounts::Plan budgets_;  // each jail's share of the per-user kernel budgets
    int landlock_abi_ = 0;
    UniqueFd init_exe_;  // kiln-init, O_PATH: exec'd by every jail's setup
    std::atomic<unsigned long> next_run_{0};
};

// kiln-init's path: the option or $KILN_INIT when given (and then only
// that), else the build tree's, else the installed one.
Result<std::string> find_kiln_init(const std::string& configured) {
    std::vector<std::string> tried;
    std::string chosen = configured.empty() ? env_value("KILN_INIT", "") : configured;
    auto candidates = chosen.empty() ? std::vector<std::string>{KILN_INIT_BUILD_PATH, KILN_INIT_INSTALL_PATH}
                                     : std::vector<std::string>{chosen};
    for (const auto& path : candidates) {
        if (path.empty()) continue;
        if (::access(path.c_str(), X_OK) == 0) return path;
        tried.push_back(path);
    }
    std::string list;
    for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
    return make_error("kiln-init", "the jail's init program is missing (tried " + list +
                                       "); rebuild Kiln (ninja builds sandbox/kiln-init) or set KILN_INIT", ENOENT);
}

Result<JailPlan> NativeRuntime::plan_for(const SandboxSpec& spec) const {
    if (spec.argv.empty() || spec.argv[0].empty()) return make_error("sandbox spec", "argv is empty", EINVAL);
    if (spec.limits.timeout.count() <= 0) return make_error("sandbox spec", "timeout must be positive", EINVAL);
    JailPlan plan;
    auto mounts = mount::prepare(spec);
    if (!mounts) return mounts.error();
    plan.mounts = std::move(*mounts);
    const unsigned host_uid = spec.host_uid ? spec.host_uid : caps_.host_uid;
    const unsigned host_gid = spec.host_gid ? spec.host_gid : caps_.host_gid;
    if (caps_.rootless && (host_uid != caps_.host_uid || host_gid != caps_.host_gid))
        return make_error("sandbox spec", "host_uid/host_gid: a rootless server can map the jail only to its own ids", EINVAL);
    plan.user = user::prepare(spec.uid, spec.gid, host_uid, host_gid, caps_.rootless);
    plan.caps = caps_plan_;
    plan.rlimits = rlimits::prepare(spec.limits, !cgroups_, budgets_);
    plan.budgets = &budgets_;
    plan.landlock = landlock::prepare(landlock_abi_, plan.mounts.writable_dirs);
    if (spec.network_fd >= 0 && caps_.rootless)
        return make_error("sandbox spec", "network_fd: a shared network namespace needs a root server", EINVAL);
    plan.fresh_network = spec.network_fd < 0;
    plan.seccomp = spec.seccomp;
    plan.fds[KILN_FD_BASE_BPF] = base_filter_.get();
    plan.fds[KILN_FD_EXTRA_BPF] = no_new_process_filter_.get();
    plan.fds[KILN_FD_INIT_EXE] = init_exe_.get();
    if (Status st = build_env(spec, plan); !st) return st.error();
    plan.argv_storage = spec.argv;
    plan.cwd = spec.cwd.empty() ? "/" : spec.cwd;
    if (spec.workspace_dir.empty() && plan.cwd == "/workspace") plan.cwd = "/tmp";
    plan.seal();
    return plan;
}

Result<ExecResult> NativeRuntime::run(const SandboxSpec& spec, const RunHooks& hooks) {
    auto plan = plan_for(spec);
    if (!plan) return plan.error();
    auto run_id = run_id_for(spec, "run-");
    if (!run_id) return run_id.error();
    Run run(spec, hooks);
    auto result = run.execute(*plan, cgroups_.get(), *run_id);
    if (!result) return result;
    if (!cgroups_) {
        result->notes.push_back("memory limit by RLIMIT_AS only and no CPU quota: no usable cgroup (" + cgroup_error_ + ")");
        result->notes.push_back("pids limit by RLIMIT_NPROC only: no usable cgroup");
        result->notes.push_back("peak_memory_bytes is the largest single process's RSS, not the jail's total");

    }
    return result;
}

// The run's cgroup name: inside the spec's group when it names one. A
// live jail's is "run-live-N" (make_group refuses names starting "run-").
Result<std::string> NativeRuntime::run_id_for(const SandboxSpec& spec, const char* kind) {
    std::string run_id = kind + std::to_string(next_run_.fetch_add(1));
    if (spec.group.empty()) return run_id;
    if (!safe_group_name(spec.group)) return make_error("sandbox spec", "group: invalid name '" + spec.group + "'", EINVAL);
    return spec.group + "/" + run_id;
}

Result<std::unique_ptr<LiveJail>> NativeRuntime::start(const SandboxSpec& spec) {
    if (!spec.stdin_data.empty())
        return make_error("sandbox spec", "stdin_data: a live jail's stdin is its pipe (LiveJail::stdin_fd)", EINVAL);
    auto plan = plan_for(spec);
    if (!plan) return plan.error();
    auto run_id = run_id_for(spec, "run-live-");
    if (!run_id) return run_id.error();
    auto jail = std::make_unique<NativeLiveJail>(spec, std::move(*plan));
    if (Status st = jail->start(cgroups_.get(), *run_id); !st) return st.error().wrap("starting a live jail");
    return std::unique_ptr<LiveJail>(std::move(jail));
}

Result<std::unique_ptr<RunGroup>> NativeRuntime::make_group(const std::string& name, std::uint64_t memory_limit) {
    if (!safe_group_name(name))
        return make_error("run group", "invalid name '" + name + "' (letters, digits, - and _; not run-*)", EINVAL);
    if (!cgroups_) return std::unique_ptr<RunGroup>(new NativeRunGroup(name, nullptr));
    auto g = cgroups_->create_parent(name, memory_limit);
    if (!g) return g.error().wrap("creating the cgroup of run group " + name);
    return std::unique_ptr<RunGroup>(new NativeRunGroup(name, std::move(*g)));
}

void NativeRuntime::describe_controls(bool ok, const std::string& why) {
    auto add = [&](const char* id, bool in_force, std::string detail) {
        caps_.controls.push_back({id, in_force, std::move(detail)});
    };
    std::string ids = std::to_string(caps_.host_uid) + ":" + std::to_string(caps_.host_gid);
    add("C001", ok, ok ? "user namespace; jail uid/gid map to host " + ids : why);
    add("C002", ok, ok ? "tmpfs root with read-only binds, pivot_root, root remounted read-only" : why);
    add("C003", ok, ok ? (caps_.rootless ? "own network namespace per run, loopback only"
                                          : "own network namespace per run, or one per session (workspace.network), loopback only")
                       : why);
    add("C006", ok, ok ? "seccomp BPF (default and strict profiles), denied calls fail with EPERM" : why);
    if (cgroups_)
        add("C007", ok, "cgroup " + cgroups_->kind() + " memory (no swap), pids, cpu at " + cgroups_->root() + "; rlimits");
    else
        add("C007", false, "rlimits only (RLIMIT_AS, RLIMIT_NPROC, RLIMIT_CPU): " + cgroup_error_);
    add("C008", ok, ok ? "wall-clock timeout kills the jail's pid namespace" : why);
    add("C009", ok, ok ? "all capability sets emptied, bounding set dropped, securebits locked, no_new_privs" : why);
    add("C010", ok && landlock_abi_ > 0,
        landlock_abi_ > 0 ? "landlock (ABI " + std::to_string(landlock_abi_) + ")" : "no Landlock in this kernel, no AppArmor support in Kiln");
    add("C012", ok, ok ? "mounts from the allowlist only; server fds closed; environment from an allowlist" : why);
}

Status NativeRuntime::init(const NativeOptions& options) {
    if (options.single_run && options.probe)
        return make_error("native runtime", "single_run needs probe=false: the probe would be the one run", EINVAL);
    caps_.rootless = ::geteuid() != 0;
    auto init_path = find_kiln_init(options.init_path);
    if (!init_path) return init_path.error();
    init_exe_.reset(::open(init_path->c_str(), O_PATH | O_CLOEXEC));
    if (!init_exe_) return sys_error("open " + *init_path, "kiln-init");
    // Every jail's setup shares this process's memory until it execs
    // kiln-init, and as root its id change marks that memory not dumpable
    // (the kernel's rule for a uid change). Set it now, so the server does
    // not change on its first run; no one but root may read or trace it.
    if (!caps_.rootless && ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return sys_error("prctl", "PR_SET_DUMPABLE");
    // A root server maps the jail to nobody; a rootless one can only map itself.
    caps_.host_uid = caps_.rootless ? ::geteuid() : 65534;
    caps_.host_gid = caps_.rootless ? ::getegid() : 65534;
    caps_plan_ = caps::prepare();
    budgets_ = ucounts::prepare(options.max_runs);
    auto base = seccomp::sealed(seccomp::Filter::Base);
    if (!base) return base.error().wrap("loading the base seccomp filter");
    auto no_new_process = seccomp::sealed(seccomp::Filter::NoNewProcess);
    if (!no_new_process) return no_new_process.error().wrap("loading the no-new-process seccomp filter");
    base_filter_ = std::move(*base);
    no_new_process_filter_ = std::move(*no_new_process);
    landlock_abi_ = landlock::probe_abi();
    caps_.lsm = landlock_abi_ > 0 ? "landlock (ABI " + std::to_string(landlock_abi_) + ")" : "none";

    const auto host = cgroup::HostView::read();
    auto v2 = cgroup::open_v2(host);
    if (v2) {
        cgroups_ = std::move(*v2);
    } else {
        auto v1 = cgroup::open_v1(host, options.single_run);
        if (v1) cgroups_ = std::move(*v1);
        else cgroup_error_ = "v2: " + v2.error().what() + "; v1: " + v1.error().what();
    }
    caps_.cgroup = cgroups_ ? cgroups_->kind() : "none (rlimits only)";
    if (!cgroups_) caps_.notes.push_back("no usable cgroup: " + cgroup_error_);
    if (caps_.rootless) caps_.notes.push_back("rootless: supplementary groups cannot be dropped; they show as nogroup inside");

    if (!options.probe) {
        describe_controls(true, "");
        caps_.notes.push_back("controls not probed at start (NativeOptions.probe=false): each run reports its own failures");
        return {};
    }
    // One real jail proves the namespaces, mounts and filters work here.
    SandboxSpec probe;
    probe.argv = {"true"};
    probe.limits.timeout = milliseconds(10'000);
    auto r = run(probe, RunHooks{});
    bool ok = r && r->exit_code == 0;
    std::string why = r ? "probe jail exited abnormally" : r.error().what();
    describe_controls(ok, why);
    if (!ok) return make_error("native runtime probe", why + " (user namespaces disabled? see docs/sandbox.md)",
                               r ? 0 : r.error().err);
    return {};
}

}  // namespace

Result<std::unique_ptr<Runtime>> make_native_runtime(const NativeOptions& options) {
    auto rt = std::make_unique<NativeRuntime>();
    if (Status st = rt->init(options); !st) return st.error();
    return std::unique_ptr<Runtime>(std::move(rt));
}

Status reap_leftovers() {
    // Mounts exist only inside the jails' own mount namespaces and vanish with
    // them; processes die with their pid namespace's init, which dies with the
    // server thread (PR_SET_PDEATHSIG). Cgroup directories are what outlives
    // a crashed server.
    return cgroup::reap_stale();
}

}  // namespace kiln::sandbox
