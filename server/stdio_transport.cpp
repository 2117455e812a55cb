#include "server/stdio_transport.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "common/unique_fd.hpp"

namespace kiln::server {

LineReader::LineReader(int in_fd, std::size_t max_bytes, int stop_fd)
    : in_fd_(in_fd), max_bytes_(max_bytes), stop_fd_(stop_fd) {}

LineReader::End LineReader::run(const std::function<void(std::string_view)>& on_line,
                                const std::function<void(std::size_t)>& on_oversized) {
    std::string line;
    bool skipping = false;      // inside an oversized line, dropping bytes
    std::size_t skipped = 0;
    std::vector<char> chunk(64 * 1024);
    auto deliver = [&](std::string& text) {
        if (!text.empty() && text.back() == '\r') text.pop_back();
        bool blank = text.find_first_not_of(" \t") == std::string::npos;
        if (!blank) on_line(text);
        text.clear();
    };
    for (;;) {
        struct pollfd fds[2] = {{in_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
        int n = ::poll(fds, stop_fd_ >= 0 ? 2 : 1, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return End::Error;
        }
        if (stop_fd_ >= 0 && (fds[1].revents & POLLIN)) return End::Stopped;
        ssize_t got = ::read(in_fd_, chunk.data(), chunk.size());
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return End::Error;
        }
        if (got == 0) {
            if (!skipping && !line.empty()) deliver(line);  // a last line without newline
            return End::Eof;
        }
        std::string_view data(chunk.data(), static_cast<std::size_t>(got));
        while (!data.empty()) {
            auto nl = data.find('\n');
            std::string_view piece = data.substr(0, nl);
            if (skipping) {
                skipped += piece.size();
            } else if (line.size() + piece.size() > max_bytes_) {
                skipping = true;
                skipped = line.size() + piece.size();
                line.clear();
                line.shrink_to_fit();
            } else {
                line.append(piece);
            }
            if (nl == std::string_view::npos) break;
            if (skipping) {
                on_oversized(skipped);
                skipping = false;
                skipped = 0;
            } else {
                deliver(line);
            }
            data.remove_prefix(nl + 1);
        }
    }
}

namespace {

// Writes all of `text` or gives up when the client is gone.
bool write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        text.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

}  // namespace

// SIGINT/SIGTERM arrive through a signalfd so shutdown is an ordinary event
// in the read loop.
UniqueFd block_termination_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    return UniqueFd(signalfd(-1, &set, SFD_CLOEXEC));
}

std::string new_session_id(const std::string& prefix) {
    unsigned char bytes[12];
    if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes))
        for (auto& b : bytes) b = static_cast<unsigned char>(std::rand());
    static const char* hex = "0123456789abcdef";
    std::string id = prefix + "-";
    for (unsigned char b : bytes) {
        id.push_back(hex[b >> 4]);
        id.push_back(hex[b & 0xF]);
    }
    return id;
}

int serve_stdio(const SessionOptions& options, const tools::Registry& registry, int stop_fd) {
    ::signal(SIGPIPE, SIG_IGN);  // a vanished client is a write error, not a death

    std::mutex out_mutex;
    bool out_broken = false;
    auto sink = [&](const nlohmann::json& message) {
        std::string text = jsonrpc::serialize(message);
        text.push_back('\n');
        std::lock_guard lock(out_mutex);
        if (!out_broken && !write_all(STDOUT_FILENO, text)) {
            out_broken = true;
            spdlog::warn("stdout closed: the client has gone away");
        }
    };

    Session session(options, registry, sink, new_session_id("stdio"));
    LineReader reader(STDIN_FILENO, options.max_message_bytes, stop_fd);
    auto end = reader.run([&](std::string_view line) { session.handle_text(line); },
                          [&](std::size_t size) { session.reject_oversized(size); });
    switch (end) {
        case LineReader::End::Eof: spdlog::info("stdin closed: shutting down"); break;
        case LineReader::End::Stopped: spdlog::info("signal received: shutting down"); break;
        case LineReader::End::Error: spdlog::error("reading stdin failed: {}", std::strerror(errno)); break;
    }
    session.shutdown();
    return end == LineReader::End::Error ? 1 : 0;
}

}  // namespace kiln::server
