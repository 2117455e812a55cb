#include "server/line_reader.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

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
            // A last line without a newline counts like any other, an
            // oversized one included: its sender still gets the error.
            if (skipping) on_oversized(skipped);
            else if (!line.empty()) deliver(line);
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

}  // namespace kiln::server
