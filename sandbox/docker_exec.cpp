// One run in one container: an exec of the program, its stdin fed and its
// output read over the hijacked exec stream, the deadline and cancellation
// enforced by killing the container, then what the daemon knows about the
// run (exit status, OOM, peak memory).
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <signal.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>

#include "sandbox/docker_internal.hpp"

namespace kiln::sandbox::docker {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr const char* kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

// The native jail's allowlist (PATH HOME LANG TERM) and the spec's own;
// nothing of the server's environment.
Result<std::vector<std::string>> exec_env(const SandboxSpec& spec) {
    std::vector<std::string> env = {std::string("PATH=") + kPath, "HOME=/tmp", "LANG=" + env_or("LANG", "C.UTF-8"),
                                    "TERM=" + env_or("TERM", "dumb")};
    for (const auto& kv : spec.env) {
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) return make_error("sandbox env", "'" + kv + "' is not KEY=VALUE", EINVAL);
        std::string key = kv.substr(0, eq + 1);
        std::erase_if(env, [&](const std::string& e) { return e.rfind(key, 0) == 0; });
        env.push_back(kv);
    }
    return env;
}

// The multiplexed stream of a non-TTY exec: frames of an 8-byte header
// (stream 1 stdout or 2 stderr, three zero bytes, big-endian length) and
// that many bytes of output.
class Demux {
public:
    Demux(ExecResult& r, std::uint64_t cap, const RunHooks& hooks) : r_(r), cap_(cap), hooks_(hooks) {}

    void feed(const char* data, std::size_t n) {
        buf_.append(data, n);
        std::size_t pos = 0;
        for (;;) {
            if (left_ == 0) {
                if (buf_.size() - pos < 8) break;
                const auto* h = reinterpret_cast<const unsigned char*>(buf_.data() + pos);
                stderr_ = h[0] == 2;
                left_ = (std::uint32_t{h[4]} << 24) | (std::uint32_t{h[5]} << 16) | (std::uint32_t{h[6]} << 8) | h[7];
                pos += 8;
                continue;
            }
            std::size_t take = std::min<std::size_t>(left_, buf_.size() - pos);
            if (take == 0) break;
            keep(buf_.data() + pos, take);
            pos += take;
            left_ -= take;
        }
        buf_.erase(0, pos);
    }

private:
    // Past the cap the bytes are counted and dropped, as in the native jail.
    void keep(const char* data, std::size_t n) {
        std::string& into = stderr_ ? r_.stderr_data : r_.stdout_data;
        (stderr_ ? r_.stderr_bytes : r_.stdout_bytes) += n;
        std::size_t room = into.size() < cap_ ? cap_ - into.size() : 0;
        std::size_t kept = std::min(room, n);
        if (kept < n) (stderr_ ? r_.stderr_truncated : r_.stdout_truncated) = true;
        if (kept == 0) return;
        into.append(data, kept);
        if (hooks_.on_output) hooks_.on_output(std::string_view(data, kept), stderr_);
    }

    ExecResult& r_;
    std::uint64_t cap_;
    const RunHooks& hooks_;
    std::string buf_;
    std::uint64_t left_ = 0;
    bool stderr_ = false;
};

class ExecRun {
public:
    explicit ExecRun(RunContext& ctx) : ctx_(ctx), demux_(result_, ctx.spec.limits.output_cap_bytes, ctx.hooks) {}
    Result<ExecResult> execute();

private:
    Result<std::string> create_exec();
    Status pump(Stream& stream);
    void kill_container();
    void collect(const std::string& exec_id);
    bool oom_event_seen();

    RunContext& ctx_;
    ExecResult result_;
    Demux demux_;
    UniqueFd stop_fd_;
    Clock::time_point t_start_;
    std::chrono::system_clock::time_point wall_start_;
    bool killed_ = false;
};

Result<std::string> ExecRun::create_exec() {
    const SandboxSpec& spec = ctx_.spec;
    auto env = exec_env(spec);
    if (!env) return env.error();
    std::string cwd = spec.cwd.empty() ? "/" : spec.cwd;
    if (cwd == "/workspace" && spec.workspace_dir.empty()) cwd = "/tmp";
    json body = {{"AttachStdin", !spec.stdin_data.empty()}, {"AttachStdout", true}, {"AttachStderr", true},
                 {"Tty", false}, {"Cmd", spec.argv}, {"Env", *env}, {"WorkingDir", cwd},
                 {"User", std::to_string(ctx_.uid) + ":" + std::to_string(ctx_.gid)}, {"Privileged", false}};
    auto r = ctx_.client.request("POST", "/containers/" + ctx_.container.id + "/exec", body.dump());
    if (!r) return std::move(r.error()).wrap("creating the run's exec");
    if (r->status != 201) return make_error("creating the run's exec", "HTTP " + std::to_string(r->status) + ": " + r->body, EINVAL);
    return json::parse(r->body, nullptr, false).value("Id", std::string());
}

// Killing the container's pid 1 ends its pid namespace, every process of
// the run with it, at once (the daemon's kill takes ~200 ms here). Through
// its pidfd, so a recycled pid is never hit; without one (the daemon on
// another host, or not root) the daemon kills it.
void ExecRun::kill_container() {
    if (killed_) return;
    killed_ = true;
    const UniqueFd& pidfd = ctx_.container.pidfd;
    if (pidfd && ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) == 0) {
        pollfd exited{pidfd.get(), POLLIN, 0};
        if (::poll(&exited, 1, 1000) == 1) return;
    }
    (void)ctx_.client.request("POST", "/containers/" + ctx_.container.id + "/kill?signal=KILL");
}

// Output until the stream ends (every holder of the program's stdout and
// stderr is gone), the deadline passes or the caller cancels.
Status ExecRun::pump(Stream& stream) {
    const std::string& in = ctx_.spec.stdin_data;
    std::size_t sent = 0;
    bool writing = !in.empty();
    const auto deadline = t_start_ + ctx_.spec.limits.timeout;
    auto next_progress = t_start_ + milliseconds(250);
    if (!stream.pending.empty()) demux_.feed(stream.pending.data(), stream.pending.size());
    for (;;) {
        auto now = Clock::now();
        if (now >= deadline) {
            result_.timed_out = true;
            kill_container();
            return {};
        }
        pollfd fds[2] = {{stream.fd.get(), static_cast<short>(POLLIN | (writing ? POLLOUT : 0)), 0},
                         {stop_fd_ ? stop_fd_.get() : -1, POLLIN, 0}};
        auto wake = std::min(deadline, ctx_.hooks.on_progress ? next_progress : deadline);
        int rc = ::poll(fds, 2, static_cast<int>(std::max<long long>(1, duration_cast<milliseconds>(wake - now).count() + 1)));
        if (rc < 0 && errno != EINTR) return sys_error("poll", "the exec stream");
        if (fds[1].revents) {
            result_.cancelled = true;
            kill_container();
            return {};
        }
        if (writing && (fds[0].revents & POLLOUT)) {
            ssize_t n = ::send(stream.fd.get(), in.data() + sent, in.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) sent += static_cast<std::size_t>(n);
            // The half-close is the program's end of input.
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || sent == in.size()) {
                ::shutdown(stream.fd.get(), SHUT_WR);
                writing = false;
            }
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[65536];
            ssize_t n = ::recv(stream.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return {};
            if (n > 0) demux_.feed(buf, static_cast<std::size_t>(n));
        }
        if (ctx_.hooks.on_progress && Clock::now() >= next_progress) {
            next_progress += milliseconds(250);
            ctx_.hooks.on_progress(Progress{duration_cast<milliseconds>(Clock::now() - t_start_), result_.stdout_bytes,
                                            result_.stderr_bytes});
        }
    }
}

// The kernel's count of OOM kills in the container's memory cgroup (a
// fresh container per run: any kill is this run's), found through the
// container's pid 1: v1 memory.oom_control, v2 memory.events. nullopt when
// it cannot be read (another host's daemon, no permission).
std::optional<bool> cgroup_oom_kills(int pid) {
    if (pid <= 0) return std::nullopt;
    std::ifstream cgroups("/proc/" + std::to_string(pid) + "/cgroup");
    std::string file;
    for (std::string line; std::getline(cgroups, line);) {
        auto a = line.find(':'), b = line.find(':', a + 1);
        if (a == std::string::npos || b == std::string::npos) continue;
        std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
        if (controllers == "memory") file = "/sys/fs/cgroup/memory" + path + "/memory.oom_control";
        else if (controllers.empty() && file.empty()) file = "/sys/fs/cgroup" + path + "/memory.events";
    }
    std::ifstream in(file);
    for (std::string key; in >> key;) {
        unsigned long long n = 0;
        if (!(in >> n)) break;
        if (key == "oom_kill") return n > 0;
    }
    return std::nullopt;
}

// The daemon records an "oom" event when the kernel's OOM killer acts in
// the container's memory cgroup; here it sometimes never came (one of two
// OOM kills in a row), so this is the fallback when the cgroup cannot be
// read. It may arrive after the stream ends: a SIGKILL exit asks a few times.
bool ExecRun::oom_event_seen() {
    auto since = std::chrono::duration_cast<std::chrono::seconds>(wall_start_.time_since_epoch()).count() - 1;
    std::string filters = url_encode(json{{"container", {ctx_.container.id}}, {"event", {"oom"}}}.dump());
    for (int attempt = 0; attempt < 5; ++attempt) {
        auto until = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
        auto r = ctx_.client.request("GET", "/events?since=" + std::to_string(since) + "&until=" + std::to_string(until) +
                                                "&filters=" + filters, {}, milliseconds(5000));
        if (r && r->status == 200 && r->body.find("\"oom\"") != std::string::npos) return true;
        std::this_thread::sleep_for(milliseconds(100));
    }
    return false;
}

void ExecRun::collect(const std::string& exec_id) {
    auto r = ctx_.client.request("GET", "/exec/" + exec_id + "/json");
    json info = r && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
    // Docker reports a program killed by signal N as exit code 128 + N.
    int code = info.is_object() && info["ExitCode"].is_number_integer() ? info["ExitCode"].get<int>() : -1;
    bool running = info.is_object() && info.value("Running", false);
    if (result_.timed_out || result_.cancelled || running) result_.signal = 9;
    else if (code > 128 && code < 160) result_.signal = code - 128;
    else result_.exit_code = code;
    // Peak memory and CPU of the container's cgroup (v1: max_usage).
    auto s = ctx_.client.request("GET", "/containers/" + ctx_.container.id + "/stats?stream=false&one-shot=true");
    json stats = s && s->status == 200 ? json::parse(s->body, nullptr, false) : json();
    if (stats.is_object()) {
        const json& mem = stats["memory_stats"];
        if (mem.is_object()) result_.peak_memory_bytes = mem.value("max_usage", mem.value("usage", std::uint64_t{0}));
        const json& cpu = stats["cpu_stats"];
        if (cpu.is_object() && cpu["cpu_usage"].is_object())
            result_.cpu = duration_cast<milliseconds>(std::chrono::nanoseconds(cpu["cpu_usage"].value("total_usage", std::uint64_t{0})));
    }
    if (result_.signal == 9 && !result_.timed_out && !result_.cancelled) {
        auto counted = cgroup_oom_kills(ctx_.container.pid);
        result_.oom_killed = counted ? *counted : oom_event_seen();
    }
}

Result<ExecResult> ExecRun::execute() {
    t_start_ = Clock::now();
    wall_start_ = std::chrono::system_clock::now();
    if (ctx_.hooks.stop.stop_possible()) stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    std::stop_callback on_stop(ctx_.hooks.stop, [this] {
        if (stop_fd_) {
            std::uint64_t one = 1;
            (void)!::write(stop_fd_.get(), &one, sizeof one);
        }
    });
    auto exec_id = create_exec();
    if (!exec_id) return exec_id.error();
    auto stream = ctx_.client.hijack("/exec/" + *exec_id + "/start", json{{"Detach", false}, {"Tty", false}}.dump(),
                                     ctx_.spec.limits.timeout);
    if (!stream) return std::move(stream.error()).wrap("starting the run's exec");
    auto t_exec = Clock::now();
    if (Status st = pump(*stream); !st) {
        kill_container();
        return st.error();
    }
    auto t_exit = Clock::now();
    stream->fd.reset();
    collect(*exec_id);
    // The container dies with the run: nothing it started outlives it.
    kill_container();
    auto t_end = Clock::now();
    result_.duration = duration_cast<milliseconds>(t_exit - t_start_);
    result_.timings.setup = duration_cast<microseconds>(t_exec - t_start_);
    result_.timings.run = duration_cast<microseconds>(t_exit - t_exec);
    result_.timings.teardown = duration_cast<microseconds>(t_end - t_exit);
    return std::move(result_);
}

}  // namespace

Result<ExecResult> run_in_container(RunContext& ctx) {
    ExecRun run(ctx);
    return run.execute();
}

}  // namespace kiln::sandbox::docker
