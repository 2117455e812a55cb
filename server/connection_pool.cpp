#include "server/connection_pool.hpp"

#include <spdlog/spdlog.h>

#include <system_error>
#include <thread>

namespace kiln::server {

ConnectionPool::ConnectionPool(unsigned max_threads, unsigned keep_threads, std::chrono::milliseconds idle_exit)
    : max_threads_(std::max(1u, max_threads)), keep_threads_(std::min(keep_threads, max_threads_)), idle_exit_(idle_exit) {}

ConnectionPool::~ConnectionPool() { shutdown(); }

void ConnectionPool::enqueue(std::function<void()> fn) {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(fn));
    // Each idle thread takes one job; a job no idle thread will take gets a
    // new thread, up to the cap.
    if (idle_ >= jobs_.size()) {
        work_cv_.notify_one();
        return;
    }
    if (threads_ < max_threads_ && start_thread_locked()) return;
    work_cv_.notify_one();
    if (threads_ == max_threads_)
        spdlog::debug("http: all {} workers busy: a connection waits ({} queued; server.http.threads)", max_threads_,
                      jobs_.size());
}

// Threads are detached and counted: shutdown() waits for the count to reach
// zero, and a thread touches the pool last under the lock as it leaves.
bool ConnectionPool::start_thread_locked() {
    try {
        std::thread([this] { work(); }).detach();
    } catch (const std::system_error& e) {
        // EAGAIN (threads-max, RLIMIT_NPROC, memory): the job waits for a
        // thread that exists; with none at all it would wait forever.
        spdlog::warn("http: cannot start a worker thread ({}); {} threads serve the queue", e.what(), threads_);
        return false;
    }
    ++threads_;
    return true;
}

void ConnectionPool::work() {
    std::unique_lock lock(mutex_);
    for (;;) {
        ++idle_;
        bool woke = work_cv_.wait_for(lock, idle_exit_, [&] { return !jobs_.empty() || stopping_; });
        --idle_;
        if (jobs_.empty()) {
            if (stopping_ || (!woke && threads_ > keep_threads_)) break;
            continue;
        }
        auto job = std::move(jobs_.front());
        jobs_.pop_front();
        lock.unlock();
        job();
        job = nullptr;  // its captures go before the lock is taken again
        lock.lock();
    }
    --threads_;
    gone_cv_.notify_all();
}

void ConnectionPool::shutdown() {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    work_cv_.notify_all();
    gone_cv_.wait(lock, [&] { return threads_ == 0; });
}

ConnectionPool::Counts ConnectionPool::counts() const {
    std::lock_guard lock(mutex_);
    return {threads_, threads_ - idle_, jobs_.size()};
}

}  // namespace kiln::server
