// Persistent Python interpreters, one per workspace (run_code persist:true).
//
// A LiveInterpreter is tools/kiln_driver.py running in a live jail
// (sandbox::Runtime::start) and spoken to over its pipes: 4-byte big-endian
// length, then JSON. One call at a time; past a call's wall-clock or CPU
// limit it is interrupted (KeyboardInterrupt, state kept), and killed if it
// has not answered within kInterruptGrace (state lost); an OOM kill or a
// driver that dies loses the state too, and the result says so.
//
// The InterpreterPool keys interpreters by workspace (the session's today; a
// stateless workspace handle later names the same one), bounds them per
// server and per principal (interpreter.max_per_server, .max_per_principal),
// and ends those idle for interpreter.idle_timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "sandbox/runtime.hpp"
#include "tools/workspace.hpp"

namespace kiln::tools {

inline constexpr std::chrono::milliseconds kInterruptGrace{2000};

// The driver's source, read once at server start (found like kiln-init:
// $KILN_DRIVER, else the build tree's, else the installed one).
Result<std::string> load_interpreter_driver();

struct CellRequest {
    std::string code;
    std::chrono::milliseconds timeout{30'000};  // wall clock
    std::chrono::milliseconds cpu_limit{30'000};
    std::uint64_t output_cap = 1ull << 20;  // stdout, stderr and the value each
    unsigned max_images = 8;
    std::uint64_t max_image_bytes = 2ull << 20;
    std::stop_token stop;  // the client cancelled: interrupt, as at the deadline
};

struct CellImage {
    std::string png_base64;
    unsigned width = 0, height = 0;
};

struct CellResult {
    unsigned generation = 0;  // of the interpreter the call ran in
    sandbox::ExecResult exec;  // stdout, stderr (+ stray fd output), limits hit, cpu, memory
    std::optional<std::string> value;  // the last expression's repr (a DataFrame as a table)
    bool value_truncated = false;
    nlohmann::json error;  // null, or {type, message, traceback}
    std::vector<CellImage> images;
    unsigned images_dropped = 0;
    bool interrupted = false;  // past a limit or cancelled: KeyboardInterrupt, variables kept
    // The interpreter ended during the call: its variables are gone; why, in words.
    std::optional<std::string> state_lost;
};

class LiveInterpreter {
public:
    // Starts the driver in a live jail and waits for its "ready".
    static Result<std::unique_ptr<LiveInterpreter>> start(sandbox::Runtime& runtime, const sandbox::SandboxSpec& spec,
                                                          unsigned generation);
    CellResult run(const CellRequest& request);
    bool alive() const { return jail_ && jail_->alive(); }
    unsigned generation() const { return generation_; }
    sandbox::LiveStats stats() const { return jail_->stats(); }

private:
    LiveInterpreter(std::unique_ptr<sandbox::LiveJail> jail, unsigned generation)
        : jail_(std::move(jail)), generation_(generation) {}
    class Exchange;
    std::unique_ptr<sandbox::LiveJail> jail_;
    unsigned generation_;
};

struct InterpreterLimits {
    std::chrono::milliseconds idle_timeout{10 * 60 * 1000};
    unsigned max_per_server = 8;
    unsigned max_per_principal = 4;
};

class InterpreterPool {
public:
    // The interpreter of one workspace, and its generation count; locked by
    // the caller for the length of a call (one call at a time).
    struct Entry {
        std::mutex mutex;
        std::string principal;
        // The workspace its jail binds at /workspace: kept until the jail is gone.
        std::shared_ptr<Workspace> workspace;
        std::unique_ptr<LiveInterpreter> interpreter;  // null: none running now
        std::chrono::steady_clock::time_point last_used = std::chrono::steady_clock::now();
    };

    explicit InterpreterPool(InterpreterLimits limits);
    ~InterpreterPool();  // ends every interpreter

    // The workspace's entry, made when new within the ceilings; the error
    // names the setting that refused it.
    Result<std::shared_ptr<Entry>> entry(const std::string& workspace, const std::string& principal);
    // Ends the workspace's interpreter (a reset, or the workspace's end).
    void end(const std::string& workspace);
    // LiveInterpreter::start on the pool's own thread: a jail dies with the
    // thread that started it (sandbox::Runtime::start), and a call's thread
    // ends with the call.
    Result<std::unique_ptr<LiveInterpreter>> start(sandbox::Runtime& runtime, const sandbox::SandboxSpec& spec);
    // Ends interpreters idle longer than idle_timeout; returns how many.
    std::size_t reap_idle();
    void start_reaper(std::chrono::milliseconds interval);
    std::size_t running() const;
    // Generation numbers are unique in the server's life: the audit records
    // of calls that shared one interpreter (its variables) share one number.
    unsigned next_generation() { return ++generations_; }
    const InterpreterLimits& limits() const { return limits_; }

private:
    InterpreterLimits limits_;
    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<Entry>> entries_;
    std::atomic<unsigned> generations_{0};
    std::mutex starts_mutex_;
    std::condition_variable_any start_wanted_;
    std::deque<std::function<void()>> starts_;
    std::jthread starter_;  // runs starts_; the interpreters' jails die with it
    std::jthread reaper_;  // last: stops before the map goes
};

}  // namespace kiln::tools
