// One run in one container, through the container's pid 1, a shell that
// waits on its attached stdin (docker_pool.cpp). Kiln writes the run's
// script into the container's /kiln from the host and sends the go line;
// pid 1 runs the program in a subshell with the output going to the
// attached stream, then closes its own stdout and stderr, so the stream
// ends when the program (and anything it left holding them) is done, and
// waits again. Kiln reads the container's cgroup (OOM kills, peak memory,
// CPU) while pid 1 still holds it, then closes the stream's stdin: pid 1
// exits with the program's status, which the daemon's wait returns.
// Timeout and cancellation kill pid 1, and with it the pid namespace.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
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
//
// pid 1 ends the run's output with a marker line on stdout and on stderr,
// "<token> <status>", the token a random one Kiln sent it on the go line:
// the attached stream itself only ends when the container does, and the
// daemon copies the two streams independently, so only a marker on each
// says both are complete. The last bytes of each are held back until they
// cannot be the start of the marker, so neither the result nor the live
// output ever shows it.
class Demux {
public:
    Demux(ExecResult& r, std::uint64_t cap, const RunHooks& hooks, std::string token)
        : r_(r), cap_(cap), hooks_(hooks), token_(std::move(token)) {}

    bool done() const { return ended_[0] && ended_[1]; }
    std::optional<int> status() const { return status_; }
    // The stream ended without a marker (the run was killed): what was held back is output.
    void flush() {
        for (int i = 0; i < 2; ++i) {
            if (!held_[i].empty()) keep(held_[i].data(), held_[i].size(), i == 1);
            held_[i].clear();
        }
    }

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
            hold(buf_.data() + pos, take, stderr_);
            pos += take;
            left_ -= take;
        }
        buf_.erase(0, pos);
    }

private:
    // Bytes of one stream past its marker (a process the program left
    // behind) are not the run's output.
    void hold(const char* data, std::size_t n, bool is_stderr) {
        std::string& held = held_[is_stderr];
        if (ended_[is_stderr]) return;
        held.append(data, n);
        std::size_t at = held.find(token_ + " ");
        if (at != std::string::npos) {
            std::size_t eol = held.find('\n', at);
            if (eol == std::string::npos) return;  // the rest of the marker is coming
            keep(held.data(), at, is_stderr);
            status_ = std::atoi(held.c_str() + at + token_.size() + 1);
            ended_[is_stderr] = true;
            held.clear();
            return;
        }
        // A marker is at most token + " " + 3 digits + newline long.
        const std::size_t keep_back = token_.size() + 5;
        if (held.size() > keep_back) {
            keep(held.data(), held.size() - keep_back, is_stderr);
            held.erase(0, held.size() - keep_back);
        }
    }

    // Past the cap the bytes are counted and dropped, as in the native jail.
    void keep(const char* data, std::size_t n, bool is_stderr) {
        std::string& into = is_stderr ? r_.stderr_data : r_.stdout_data;
        (is_stderr ? r_.stderr_bytes : r_.stdout_bytes) += n;
        std::size_t room = into.size() < cap_ ? cap_ - into.size() : 0;
        std::size_t kept = std::min(room, n);
        if (kept < n) (is_stderr ? r_.stderr_truncated : r_.stdout_truncated) = true;
        if (kept == 0) return;
        into.append(data, kept);
        if (hooks_.on_output) hooks_.on_output(std::string_view(data, kept), is_stderr);
    }

    ExecResult& r_;
    std::uint64_t cap_;
    const RunHooks& hooks_;
    std::string buf_;
    std::uint64_t left_ = 0;
    bool stderr_ = false;
    std::string token_, held_[2];  // [0] stdout, [1] stderr
    bool ended_[2] = {false, false};
    std::optional<int> status_;
};

std::string random_token() {
    unsigned char bytes[16];
    std::string hex;
    if (::getrandom(bytes, sizeof bytes, 0) != sizeof bytes) return "kiln-marker-without-entropy";
    for (unsigned char b : bytes) {
        hex += "0123456789abcdef"[b >> 4];
        hex += "0123456789abcdef"[b & 15];
    }
    return "kiln-end-" + hex;
}

// A word for sh, single-quoted.
std::string sh_quote(const std::string& word) {
    std::string out = "'";
    for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// The figures of the container's cgroup, through its pid 1 (alive while
// read): v1 memory and cpuacct, or v2. Missing ones stay unset.
struct CgroupFigures {
    std::optional<bool> oom_killed;
    std::optional<std::uint64_t> peak_memory, cpu_ns;
};

std::optional<std::uint64_t> read_number(const std::string& file, const std::string& key = {}) {
    std::ifstream in(file);
    if (key.empty()) {
        std::uint64_t n = 0;
        if (in >> n) return n;
        return std::nullopt;
    }
    for (std::string k; in >> k;) {
        std::uint64_t n = 0;
        if (!(in >> n)) break;
        if (k == key) return n;
    }
    return std::nullopt;
}

CgroupFigures read_cgroup(int pid) {
    CgroupFigures f;
    if (pid <= 0) return f;
    std::ifstream cgroups("/proc/" + std::to_string(pid) + "/cgroup");
    std::string memory, cpuacct, unified;
    for (std::string line; std::getline(cgroups, line);) {
        auto a = line.find(':'), b = line.find(':', a + 1);
        if (a == std::string::npos || b == std::string::npos) continue;
        std::string controllers = "," + line.substr(a + 1, b - a - 1) + ",", path = line.substr(b + 1);
        if (controllers.find(",memory,") != std::string::npos) memory = "/sys/fs/cgroup/memory" + path;
        if (controllers.find(",cpuacct,") != std::string::npos)
            cpuacct = "/sys/fs/cgroup/" + controllers.substr(1, controllers.size() - 2) + path;
        if (controllers == ",,") unified = "/sys/fs/cgroup" + path;
    }
    if (!memory.empty()) {
        if (auto n = read_number(memory + "/memory.oom_control", "oom_kill")) f.oom_killed = *n > 0;
        f.peak_memory = read_number(memory + "/memory.max_usage_in_bytes");
        if (!cpuacct.empty()) f.cpu_ns = read_number(cpuacct + "/cpuacct.usage");
    } else if (!unified.empty()) {
        if (auto n = read_number(unified + "/memory.events", "oom_kill")) f.oom_killed = *n > 0;
        f.peak_memory = read_number(unified + "/memory.peak");
        if (auto us = read_number(unified + "/cpu.stat", "usage_usec")) f.cpu_ns = *us * 1000;
    }
    return f;
}

class ExecRun {
public:
    explicit ExecRun(RunContext& ctx)
        : ctx_(ctx), token_(random_token()), demux_(result_, ctx.spec.limits.output_cap_bytes, ctx.hooks, token_) {}
    Result<ExecResult> execute();

private:
    Status pump(Stream& stream);
    void kill_container();
    void collect();
    int wait_for_exit(CgroupFigures& f);
    bool oom_event_seen();

    RunContext& ctx_;
    ExecResult result_;
    std::string token_;
    Demux demux_;
    UniqueFd stop_fd_;
    Clock::time_point t_start_;
    std::chrono::system_clock::time_point wall_start_;
    bool killed_ = false;
};

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

// Output until the stream ends (pid 1 closed its copies and every holder of
// the program's stdout and stderr is gone), the deadline passes or the
// caller cancels.
Status ExecRun::pump(Stream& stream) {
    const auto deadline = t_start_ + ctx_.spec.limits.timeout;
    auto next_progress = t_start_ + milliseconds(250);
    if (!stream.pending.empty()) demux_.feed(stream.pending.data(), stream.pending.size());
    for (;;) {
        if (demux_.done()) return {};
        auto now = Clock::now();
        if (now >= deadline) {
            result_.timed_out = true;
            kill_container();
            return {};
        }
        pollfd fds[2] = {{stream.fd.get(), POLLIN, 0}, {stop_fd_ ? stop_fd_.get() : -1, POLLIN, 0}};
        auto wake = std::min(deadline, ctx_.hooks.on_progress ? next_progress : deadline);
        int rc = ::poll(fds, 2, static_cast<int>(std::max<long long>(1, duration_cast<milliseconds>(wake - now).count() + 1)));
        if (rc < 0 && errno != EINTR) return sys_error("poll", "the container's stream");
        if (fds[1].revents) {
            result_.cancelled = true;
            kill_container();
            return {};
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[65536];
            ssize_t n = ::recv(stream.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                demux_.flush();
                return {};
            }
            if (n > 0) demux_.feed(buf, static_cast<std::size_t>(n));
            if (demux_.done()) return {};
        }
        if (ctx_.hooks.on_progress && Clock::now() >= next_progress) {
            next_progress += milliseconds(250);
            ctx_.hooks.on_progress(Progress{duration_cast<milliseconds>(Clock::now() - t_start_), result_.stdout_bytes,
                                            result_.stderr_bytes});
        }
    }
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

// The strict profile's run is pid 1 itself (run_script): the container's
// exit is the run's, with the daemon's status and OOM flag. Its cgroup is
// gone by then, so there is no peak memory or CPU figure.
int ExecRun::wait_for_exit(CgroupFigures& f) {
    result_.notes.push_back("strict seccomp profile under docker: the program is the container's pid 1; no peak memory or CPU figure");
    auto r = ctx_.client.request("POST", "/containers/" + ctx_.container.id + "/wait", {}, milliseconds(10'000));
    json info = r && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
    auto state = ctx_.client.request("GET", "/containers/" + ctx_.container.id + "/json");
    json c = state && state->status == 200 ? json::parse(state->body, nullptr, false) : json();
    if (c.is_object() && c["State"].is_object() && c["State"].value("OOMKilled", false)) f.oom_killed = true;
    return info.is_object() && info["StatusCode"].is_number_integer() ? info["StatusCode"].get<int>() : -1;
}

// pid 1 still holds the cgroup: read it, then let pid 1 exit.
void ExecRun::collect() {
    const bool strict = ctx_.spec.seccomp == SeccompProfile::Strict;
    CgroupFigures f = killed_ || strict ? CgroupFigures{} : read_cgroup(ctx_.container.pid);
    if (f.peak_memory) result_.peak_memory_bytes = *f.peak_memory;
    if (f.cpu_ns) result_.cpu = duration_cast<milliseconds>(std::chrono::nanoseconds(*f.cpu_ns));
    // pid 1 exits when its stdin closes; the container goes with it.
    ::shutdown(ctx_.container.stream.fd.get(), SHUT_WR);
    // sh reports a program killed by signal N as status 128 + N.
    int code = strict && !killed_ ? wait_for_exit(f) : demux_.status().value_or(-1);
    if (!strict && !demux_.done() && !killed_) result_.notes.push_back("the container ended before the run reported its status");
    if (result_.timed_out || result_.cancelled) result_.signal = 9;
    else if (code > 128 && code < 160) result_.signal = code - 128;
    else result_.exit_code = code;
    if (result_.signal == 9 && !result_.timed_out && !result_.cancelled)
        result_.oom_killed = f.oom_killed ? *f.oom_killed : oom_event_seen();
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
    Stream& stream = ctx_.container.stream;
    const std::string go = token_ + "\n";
    if (::send(stream.fd.get(), go.data(), go.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(go.size()))
        return sys_error("send", "the go line to the container's pid 1");
    auto t_exec = Clock::now();
    if (Status st = pump(stream); !st) {
        kill_container();
        return st.error();
    }
    auto t_exit = Clock::now();
    collect();
    stream.fd.reset();
    auto t_end = Clock::now();
    result_.duration = duration_cast<milliseconds>(t_exit - t_start_);
    result_.timings.setup = duration_cast<microseconds>(t_exec - t_start_);
    result_.timings.run = duration_cast<microseconds>(t_exit - t_exec);
    result_.timings.teardown = duration_cast<microseconds>(t_end - t_exit);
    return std::move(result_);
}

}  // namespace

// Sourced by pid 1 (sh): the allowlisted environment, the program in a
// subshell that execs it, its stdin from /kiln/stdin or /dev/null, then
// the end marker with the program's status (Demux), and pid 1 lets go of
// the output and waits for its stdin to close to exit.
std::string run_script(const SandboxSpec& spec) {
    std::string cwd = spec.cwd.empty() ? "/" : spec.cwd;
    if (cwd == "/workspace" && spec.workspace_dir.empty()) cwd = "/tmp";
    std::string script = "export";
    auto env = exec_env(spec);
    for (const auto& kv : env ? *env : std::vector<std::string>{}) script += " " + sh_quote(kv);
    std::string run = "cd " + sh_quote(cwd) + " && exec";
    for (const auto& a : spec.argv) run += " " + sh_quote(a);
    run += spec.stdin_data.empty() ? " </dev/null" : " </kiln/stdin";
    // The strict profile refuses pid 1 the fork of a subshell: the program
    // replaces pid 1, and its status comes from the container's exit.
    if (spec.seccomp == SeccompProfile::Strict) return script + "\n" + run + "\n";
    script += "\n(" + run + ")\nkiln_status=$?\nprintf '%s %s\\n' \"$kiln_go\" \"$kiln_status\"\n"
              "printf '%s %s\\n' \"$kiln_go\" \"$kiln_status\" >&2\n"
              "exec >/dev/null 2>&1\nread -r kiln_done\nexit $kiln_status\n";
    return script;
}

Result<ExecResult> run_in_container(RunContext& ctx) {
    ExecRun run(ctx);
    return run.execute();
}

}  // namespace kiln::sandbox::docker
