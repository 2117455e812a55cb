#pragma once
// The worker pool cpp-httplib serves connections on, sized by demand.
//
// cpp-httplib 0.11.4 gives each accepted connection to one pool worker for
// the connection's whole life, and a connection that sends nothing or
// trickles its request a byte at a time holds that worker for the read
// timeout per read, that is for as long as it keeps trickling. Its own pool
// has a fixed number of threads and an unbounded queue behind them: a few
// hundred slow connections fill the workers, and /healthz or a tool call on
// a new connection waits in the queue behind them. This pool instead starts
// a thread whenever a connection arrives and no worker is free, up to
// `max_threads`, and lets a thread go after `idle_exit` without work, so an
// idle server holds `keep_threads` threads and a flood of slow connections
// costs threads (a few KiB of touched stack each), not the service of
// everyone else. Past `max_threads` connections wait in the queue.
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace kiln::server {

class ConnectionPool final : public httplib::TaskQueue {
public:
    ConnectionPool(unsigned max_threads, unsigned keep_threads, std::chrono::milliseconds idle_exit);
    ~ConnectionPool() override;
    ConnectionPool(const ConnectionPool&) = delete;
    ConnectionPool& operator=(const ConnectionPool&) = delete;

    void enqueue(std::function<void()> fn) override;
    // Runs what is queued, then waits for every thread to finish.
    void shutdown() override;

    struct Counts {
        unsigned threads;  // alive
        unsigned busy;     // running a connection
        std::size_t queued;
    };
    Counts counts() const;

private:
    void work();
    bool start_thread_locked();

    const unsigned max_threads_;
    const unsigned keep_threads_;
    const std::chrono::milliseconds idle_exit_;
    mutable std::mutex mutex_;
    std::condition_variable work_cv_;
    std::condition_variable gone_cv_;
    std::deque<std::function<void()>> jobs_;
    unsigned threads_ = 0;
    unsigned idle_ = 0;
    bool stopping_ = false;
};

}  // namespace kiln::server
