#include "server/stdio_transport.hpp"

#include <signal.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "common/unique_fd.hpp"

namespace kiln::server {

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

// SIGINT/SIGTERM (and SIGHUP) arrive through a signalfd so shutdown and
// reload are ordinary events in the serving loop, run on a normal thread.
UniqueFd block_termination_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
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
    auto sink = [&](const nlohmann::json& message, const std::optional<nlohmann::json>&) {
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
