#include "tools/interpreter_pool.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <future>
#include <sstream>

#include "common/unique_fd.hpp"

namespace kiln::tools {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds kReadyLimit{30'000};  // the driver's start: python3 and a few imports
constexpr milliseconds kCpuCheckEvery{50};

Result<std::string> read_whole(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return sys_error("open " + path, "the interpreter driver");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// The code in the jail can write to the driver's reply descriptor too (it
// is the same process), so a reply is untrusted input: bounded in size, and
// every field read with its type checked.
std::size_t max_reply_bytes(const CellRequest& r) {
    return 3 * r.output_cap + r.max_images * (r.max_image_bytes * 4 / 3 + 256) + (1u << 20);
}

std::string text_field(const json& reply, const char* key) {
    auto it = reply.find(key);
    return it != reply.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool bool_field(const json& reply, const char* key) {
    auto it = reply.find(key);
    return it != reply.end() && it->is_boolean() && it->get<bool>();
}

unsigned uint_field(const json& reply, const char* key) {
    auto it = reply.find(key);
    return it != reply.end() && it->is_number_unsigned() ? static_cast<unsigned>(std::min<std::uint64_t>(it->get<std::uint64_t>(), 1u << 30)) : 0;
}

// Writes to the driver's stdin; a driver that died raises SIGPIPE in this
// thread, which is blocked and consumed here so the server does not depend
// on its transport ignoring it (as sandbox/native.cpp's feed_stdin does).
ssize_t write_to_driver(int fd, const std::string& data) {
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EPIPE) {
        timespec zero{0, 0};
        ::sigtimedwait(&pipe_set, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return n;
}

std::string frame(const json& message) {
    std::string body = message.dump(-1, ' ', false, json::error_handler_t::replace);
    const auto n = static_cast<std::uint32_t>(body.size());
    std::string out = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n)};
    return out + body;
}

// A frame's length, once its 4-byte header has arrived.
std::optional<std::size_t> frame_length(const std::string& buffer) {
    if (buffer.size() < 4) return std::nullopt;
    auto b = [&](int i) { return static_cast<std::size_t>(static_cast<unsigned char>(buffer[i])); };
    return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

}  // namespace

Result<std::string> load_interpreter_driver() {
    const char* env = std::getenv("KILN_DRIVER");
    std::vector<std::string> candidates = env && *env ? std::vector<std::string>{env}
                                                      : std::vector<std::string>{KILN_DRIVER_BUILD_PATH, KILN_DRIVER_INSTALL_PATH};
    std::string tried;
    for (const auto& path : candidates) {
        if (::access(path.c_str(), R_OK) == 0) return read_whole(path);
        tried += (tried.empty() ? "" : ", ") + path;
    }
    return make_error("interpreter driver", "kiln_driver.py is missing (tried " + tried + "); reinstall Kiln or set KILN_DRIVER",
                      ENOENT);
}

// One call's traffic with the driver: the request out, the reply in, the
// jail's stray output (fd 1 and 2 of child processes) collected, and the
// limits watched: interrupt past them, kill kInterruptGrace later.
class LiveInterpreter::Exchange {
public:
    Exchange(sandbox::LiveJail& jail, const CellRequest& request) : jail_(jail), request_(request) {}

    // The reply, or nothing when the interpreter died or was killed (then
    // result.state_lost says why).
    std::optional<json> run(std::string out, CellResult& result);

private:
    enum class Step { Going, Replied, Ended, Malformed };
    Step pump_once(CellResult& result);
    void watch_limits(CellResult& result);
    void read_stray();
    std::optional<json> parse_reply(CellResult& result);

    sandbox::LiveJail& jail_;
    const CellRequest& request_;
    std::string pending_out_, reply_, stray_;
    std::uint64_t stray_total_ = 0;
    Clock::time_point start_ = Clock::now(), next_cpu_check_ = start_;
    milliseconds cpu_at_start_{};
    std::optional<Clock::time_point> kill_at_;
    bool killed_ = false;
};

void LiveInterpreter::Exchange::read_stray() {
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(jail_.stderr_fd(), buf, sizeof buf);
        if (n <= 0) return;
        stray_total_ += static_cast<std::uint64_t>(n);
        std::size_t room = stray_.size() < request_.output_cap ? request_.output_cap - stray_.size() : 0;
        stray_.append(buf, std::min<std::size_t>(room, static_cast<std::size_t>(n)));
    }
}

// Past the wall clock or CPU limit, or cancelled: SIGINT once; still no
// reply kInterruptGrace later: kill.
void LiveInterpreter::Exchange::watch_limits(CellResult& result) {
    const auto now = Clock::now();
    if (kill_at_) {
        if (now >= *kill_at_ && !killed_) {
            jail_.kill();
            killed_ = true;
            result.state_lost = "the interpreter did not stop within " + std::to_string(kInterruptGrace.count() / 1000) +
                                " s of the interrupt and was killed";
        }
        return;
    }
    bool over = false;
    if (request_.stop.stop_requested()) result.exec.cancelled = over = true;
    if (now - start_ >= request_.timeout) result.exec.timed_out = over = true;
    if (!over && now >= next_cpu_check_) {
        next_cpu_check_ = now + kCpuCheckEvery;
        auto s = jail_.stats();
        if (s.have_cgroup && s.cpu - cpu_at_start_ >= request_.cpu_limit) result.exec.timed_out = over = true;
    }
    if (!over) return;
    result.interrupted = true;
    (void)jail_.interrupt();
    kill_at_ = now + kInterruptGrace;
}

LiveInterpreter::Exchange::Step LiveInterpreter::Exchange::pump_once(CellResult& result) {
    pollfd fds[3] = {{jail_.stdout_fd(), POLLIN, 0},
                     {jail_.stderr_fd(), POLLIN, 0},
                     {pending_out_.empty() ? -1 : jail_.stdin_fd(), POLLOUT, 0}};
    int rc = ::poll(fds, 3, static_cast<int>(kCpuCheckEvery.count()));
    if (rc < 0 && errno != EINTR) return Step::Ended;
    if (fds[1].revents) read_stray();
    if (fds[2].revents & POLLOUT) {
        ssize_t n = write_to_driver(jail_.stdin_fd(), pending_out_);
        if (n > 0) pending_out_.erase(0, static_cast<std::size_t>(n));
    }
    if (fds[0].revents) {
        char buf[65536];
        ssize_t n;
        while ((n = ::read(jail_.stdout_fd(), buf, sizeof buf)) > 0) {
            reply_.append(buf, static_cast<std::size_t>(n));
            if (reply_.size() > 4 + max_reply_bytes(request_)) return Step::Malformed;
        }
        auto len = frame_length(reply_);
        if (len && *len > max_reply_bytes(request_)) return Step::Malformed;
        if (len && reply_.size() >= 4 + *len) return Step::Replied;
        if (n == 0) return Step::Ended;  // EOF: the driver is gone
    }
    if (!jail_.alive()) return Step::Ended;
    watch_limits(result);
    return Step::Going;
}

std::optional<json> LiveInterpreter::Exchange::parse_reply(CellResult& result) {
    auto len = frame_length(reply_);
    json reply = json::parse(reply_.begin() + 4, reply_.begin() + 4 + static_cast<long>(*len), nullptr, false);
    if (reply.is_discarded() || !reply.is_object()) {
        jail_.kill();
        result.state_lost = "the interpreter sent a malformed reply and was restarted";
        return std::nullopt;
    }
    return reply;
}

std::optional<json> LiveInterpreter::Exchange::run(std::string out, CellResult& result) {
    pending_out_ = std::move(out);
    auto s = jail_.stats();
    cpu_at_start_ = s.cpu;
    Step step = Step::Going;
    while ((step = pump_once(result)) == Step::Going) {
    }
    read_stray();
    auto s_end = jail_.stats();
    result.exec.cpu = s_end.cpu - cpu_at_start_;
    result.exec.peak_memory_bytes = s_end.peak_memory_bytes;
    result.exec.duration = duration_cast<milliseconds>(Clock::now() - start_);
    result.exec.stdout_data = std::move(stray_);
    result.exec.stdout_bytes = stray_total_;
    result.exec.stdout_truncated = stray_total_ > result.exec.stdout_data.size();
    if (step == Step::Replied) return parse_reply(result);
    if (step == Step::Malformed) {
        jail_.kill();
        result.state_lost = "the interpreter sent a reply larger than the call's output bounds and was killed";
    }
    return std::nullopt;
}

Result<std::unique_ptr<LiveInterpreter>> LiveInterpreter::start(sandbox::Runtime& runtime, const sandbox::SandboxSpec& spec,
                                                                 unsigned generation) {
    auto jail = runtime.start(spec);
    if (!jail) return jail.error().wrap("starting the Python interpreter");
    std::unique_ptr<LiveInterpreter> interp(new LiveInterpreter(std::move(*jail), generation));
    // The driver says "ready" once it has set up its descriptors.
    std::string reply;
    const auto deadline = Clock::now() + kReadyLimit;
    while (!frame_length(reply) || reply.size() < 4 + *frame_length(reply)) {
        pollfd p{interp->jail_->stdout_fd(), POLLIN, 0};
        auto left = duration_cast<milliseconds>(deadline - Clock::now()).count();
        if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0)
            return make_error("interpreter", "the Python driver did not start within 30 s", ETIMEDOUT);
        char buf[4096];
        ssize_t n = ::read(p.fd, buf, sizeof buf);
        if (n == 0) {
            std::string err(4096, '\0');
            ssize_t e = ::read(interp->jail_->stderr_fd(), err.data(), err.size());
            err.resize(e > 0 ? static_cast<std::size_t>(e) : 0);
            return make_error("interpreter", "the Python driver exited at start: " + err, ECHILD);
        }
        if (n > 0) reply.append(buf, static_cast<std::size_t>(n));
    }
    return interp;
}

CellResult LiveInterpreter::run(const CellRequest& request) {
    CellResult result;
    result.generation = generation_;
    json message = {{"code", request.code}, {"output_cap", request.output_cap}, {"max_images", request.max_images},
                    {"max_image_bytes", request.max_image_bytes}};
    Exchange exchange(*jail_, request);
    auto reply = exchange.run(frame(message), result);
    if (!reply) {
        sandbox::ExecResult ended = jail_->end();
        result.exec.oom_killed = ended.oom_killed || stats().oom_killed;
        result.exec.signal = ended.signal;
        if (result.exec.oom_killed)
            result.state_lost = "the interpreter ran out of memory (its limit is interpreter.memory) and was killed";
        else if (!result.state_lost)
            result.state_lost = ended.signal ? "the interpreter was killed by signal " + std::to_string(*ended.signal)
                                             : "the interpreter exited (status " + std::to_string(ended.exit_code.value_or(-1)) + ")";
        return result;
    }
    const json& r = *reply;
    // The driver's own stdout comes first; what child processes wrote
    // straight to their descriptors (already in exec.stdout_data) after it.
    std::string stray = std::move(result.exec.stdout_data);
    const std::string printed = text_field(r, "stdout");
    result.exec.stdout_data = printed + stray;
    result.exec.stdout_truncated = result.exec.stdout_truncated || bool_field(r, "stdout_truncated");
    result.exec.stdout_bytes += printed.size();
    result.exec.stderr_data = text_field(r, "stderr");
    result.exec.stderr_truncated = bool_field(r, "stderr_truncated");
    result.exec.stderr_bytes = result.exec.stderr_data.size();
    if (auto v = r.find("value"); v != r.end() && v->is_string()) result.value = v->get<std::string>();
    result.value_truncated = bool_field(r, "value_truncated");
    if (auto e = r.find("error"); e != r.end() && e->is_object())
        result.error = {{"type", text_field(*e, "type")}, {"message", text_field(*e, "message")},
                        {"traceback", text_field(*e, "traceback")}};
    result.exec.exit_code = result.error.is_null() ? 0 : 1;
    if (auto images = r.find("images"); images != r.end() && images->is_array())
        for (const auto& img : *images) {
            if (!img.is_object() || result.images.size() >= request.max_images) continue;
            result.images.push_back({text_field(img, "png"), uint_field(img, "width"), uint_field(img, "height")});
        }
    result.images_dropped = uint_field(r, "images_dropped");
    return result;
}

InterpreterPool::InterpreterPool(InterpreterLimits limits) : limits_(limits) {
    starter_ = std::jthread([this](std::stop_token stop) {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(starts_mutex_);
                if (!start_wanted_.wait(lock, stop, [this] { return !starts_.empty(); })) return;
                job = std::move(starts_.front());
                starts_.pop_front();
            }
            job();
        }
    });
}

Result<std::unique_ptr<LiveInterpreter>> InterpreterPool::start(sandbox::Runtime& runtime, const sandbox::SandboxSpec& spec) {
    std::promise<Result<std::unique_ptr<LiveInterpreter>>> done;
    auto answer = done.get_future();
    {
        std::lock_guard lock(starts_mutex_);
        starts_.push_back([&] { done.set_value(LiveInterpreter::start(runtime, spec, next_generation())); });
    }
    start_wanted_.notify_one();
    return answer.get();
}

InterpreterPool::~InterpreterPool() {
    if (reaper_.joinable()) {
        reaper_.request_stop();
        reaper_.join();
    }
    std::lock_guard lock(mutex_);
    entries_.clear();  // each interpreter's jail is killed and its cgroup removed
    // starter_ (the jails' parent thread) stops after this, as the last member.
}

Result<std::shared_ptr<InterpreterPool::Entry>> InterpreterPool::entry(const std::string& workspace, const std::string& principal) {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(workspace); it != entries_.end()) return it->second;
    if (entries_.size() >= limits_.max_per_server)
        return make_error("interpreter", std::to_string(entries_.size()) + " persistent interpreters are running, the limit (interpreter.max_per_server is " +
                                             std::to_string(limits_.max_per_server) + "); retry later, or run without persist",
                          EAGAIN);
    auto mine = std::count_if(entries_.begin(), entries_.end(), [&](const auto& e) { return e.second->principal == principal; });
    if (static_cast<unsigned>(mine) >= limits_.max_per_principal)
        return make_error("interpreter", "principal '" + principal + "' has " + std::to_string(mine) +
                                             " persistent interpreters, the limit (interpreter.max_per_principal is " +
                                             std::to_string(limits_.max_per_principal) + "); end a session or wait for one to idle out",
                          EAGAIN);
    auto e = std::make_shared<Entry>();
    e->principal = principal;
    entries_[workspace] = e;
    return e;
}

void InterpreterPool::end(const std::string& workspace) {
    std::shared_ptr<Entry> e;
    {
        std::lock_guard lock(mutex_);
        auto it = entries_.find(workspace);
        if (it == entries_.end()) return;
        e = it->second;
        entries_.erase(it);
    }
    // A call still running holds the entry: its interpreter ends with the
    // call, when the last reference goes.
    std::unique_lock busy(e->mutex, std::try_to_lock);
    if (busy.owns_lock()) e->interpreter.reset();
}

std::size_t InterpreterPool::reap_idle() {
    std::vector<std::string> idle;
    {
        std::lock_guard lock(mutex_);
        const auto now = Clock::now();
        for (const auto& [ws, e] : entries_) {
            std::unique_lock busy(e->mutex, std::try_to_lock);
            if (busy.owns_lock() && now - e->last_used >= limits_.idle_timeout) idle.push_back(ws);
        }
    }
    for (const auto& ws : idle) end(ws);
    return idle.size();
}

void InterpreterPool::start_reaper(std::chrono::milliseconds interval) {
    reaper_ = std::jthread([this, interval](std::stop_token stop) {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lock(m);
        while (!cv.wait_for(lock, stop, interval, [] { return false; })) {
            if (stop.stop_requested()) return;
            reap_idle();
        }
    });
}

std::size_t InterpreterPool::running() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace kiln::tools
