// The Engine API's HTTP/1.1 client; see docker_http.hpp for why it is Kiln's own.
#include "sandbox/docker_http.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace kiln::sandbox::docker {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

// A larger answer is not the Engine API's (an inspect is a few KiB).
constexpr std::size_t kMaxResponseBytes = 64u << 20;

int ms_until(Clock::time_point deadline) {
    auto left = duration_cast<milliseconds>(deadline - Clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
}

Status wait_fd(int fd, short events, Clock::time_point deadline, const char* what) {
    for (;;) {
        pollfd p{fd, events, 0};
        int rc = ::poll(&p, 1, ms_until(deadline));
        if (rc > 0) return {};
        if (rc == 0) return make_error(what, "the Docker daemon did not answer in time", ETIMEDOUT);
        if (errno != EINTR) return sys_error("poll", what);
    }
}

Status send_all(int fd, const std::string& data, Clock::time_point deadline) {
    std::size_t sent = 0;
    while (sent < data.size()) {
        if (Status st = wait_fd(fd, POLLOUT, deadline, "sending to the Docker daemon"); !st) return st;
        ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0) return sys_error("send", "to the Docker daemon");
        sent += static_cast<std::size_t>(n);
    }
    return {};
}

// Appends what is readable; false at EOF.
Result<bool> receive_some(int fd, std::string& into, Clock::time_point deadline) {
    if (Status st = wait_fd(fd, POLLIN, deadline, "reading the Docker daemon's answer"); !st) return st.error();
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    if (n < 0) return sys_error("recv", "from the Docker daemon");
    if (into.size() + static_cast<std::size_t>(n) > kMaxResponseBytes)
        return make_error("reading the Docker daemon's answer", "larger than 64 MiB", EMSGSIZE);
    into.append(buf, static_cast<std::size_t>(n));
    return n > 0;
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

struct Head {
    int status = 0;
    long long content_length = -1;
    bool chunked = false;
};

Result<Head> parse_head(const std::string& head) {
    Head h;
    if (head.rfind("HTTP/1.", 0) != 0 || head.size() < 12)
        return make_error("Docker daemon answer", "not HTTP: '" + head.substr(0, 40) + "'", EPROTO);
    h.status = std::atoi(head.c_str() + 9);
    std::size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos + 2 < head.size()) {
        std::size_t end = head.find("\r\n", pos + 2);
        std::string line = head.substr(pos + 2, (end == std::string::npos ? head.size() : end) - pos - 2);
        std::size_t colon = line.find(':');
        if (colon != std::string::npos) {
            std::string name = lower(line.substr(0, colon));
            std::string value = line.substr(colon + 1);
            value.erase(0, value.find_first_not_of(' '));
            if (name == "content-length") h.content_length = std::atoll(value.c_str());
            if (name == "transfer-encoding" && lower(value).find("chunked") != std::string::npos) h.chunked = true;
        }
        pos = end;
    }
    return h;
}

// Decodes a complete chunked body; nullopt-like false while incomplete.
Result<bool> dechunk(const std::string& raw, std::string& out) {
    out.clear();
    std::size_t pos = 0;
    for (;;) {
        std::size_t eol = raw.find("\r\n", pos);
        if (eol == std::string::npos) return false;
        char* end = nullptr;
        unsigned long long size = std::strtoull(raw.c_str() + pos, &end, 16);
        if (end == raw.c_str() + pos) return make_error("Docker daemon answer", "bad chunk size", EPROTO);
        if (size == 0) return true;
        if (raw.size() < eol + 2 + size + 2) return false;
        out.append(raw, eol + 2, size);
        pos = eol + 2 + size + 2;
    }
}

}  // namespace

Result<UniqueFd> Client::connect_socket() const {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_.size() >= sizeof addr.sun_path)
        return make_error("Docker socket", "path too long: " + socket_, ENAMETOOLONG);
    std::memcpy(addr.sun_path, socket_.c_str(), socket_.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return sys_error("socket", "AF_UNIX for the Docker daemon");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        return sys_error("connect " + socket_,
                         "no Docker daemon answers there (is dockerd running? DOCKER_HOST=unix:///path names another socket)");
    return fd;
}

Result<Response> Client::exchange(const std::string& req, Clock::time_point deadline, bool hijack,
                                  Stream* stream) const {
    auto fd = connect_socket();
    if (!fd) return fd.error();
    if (Status st = send_all(fd->get(), req, deadline); !st) return st.error();
    std::string buf;
    std::size_t head_end;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
        auto more = receive_some(fd->get(), buf, deadline);
        if (!more) return more.error();
        if (!*more) return make_error("Docker daemon answer", "connection closed before the headers ended", EPROTO);
    }
    auto head = parse_head(buf.substr(0, head_end));
    if (!head) return head.error();
    std::string raw = buf.substr(head_end + 4);
    Response r{head->status, {}};
    if (hijack && (r.status == 101 || r.status == 200)) {
        stream->fd = std::move(*fd);
        stream->pending = std::move(raw);
        return r;
    }
    for (;;) {
        if (head->chunked) {
            auto done = dechunk(raw, r.body);
            if (!done) return done.error();
            if (*done) return r;
        } else if (head->content_length >= 0 && raw.size() >= static_cast<std::size_t>(head->content_length)) {
            r.body = raw.substr(0, static_cast<std::size_t>(head->content_length));
            return r;
        }
        auto more = receive_some(fd->get(), raw, deadline);
        if (!more) return more.error();
        if (!*more) {
            if (head->chunked || head->content_length >= 0)
                return make_error("Docker daemon answer", "connection closed inside the body", EPROTO);
            r.body = std::move(raw);
            return r;
        }
    }
}

namespace {

std::string request_text(const std::string& method, const std::string& target, const std::string& body,
                         bool upgrade) {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: docker\r\nUser-Agent: kiln\r\n";
    req += upgrade ? "Connection: Upgrade\r\nUpgrade: tcp\r\n" : "Connection: close\r\n";
    if (!body.empty()) req += "Content-Type: application/json\r\n";
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return req;
}

}  // namespace

Result<Response> Client::request(const std::string& method, const std::string& path, const std::string& body,
                                 milliseconds timeout) const {
    auto r = exchange(request_text(method, "/v" + version_ + path, body, false), Clock::now() + timeout, false, nullptr);
    if (!r) return std::move(r.error()).wrap(method + " " + path);
    return r;
}

Result<Response> Client::request_unversioned(const std::string& method, const std::string& path,
                                             milliseconds timeout) const {
    auto r = exchange(request_text(method, path, {}, false), Clock::now() + timeout, false, nullptr);
    if (!r) return std::move(r.error()).wrap(method + " " + path);
    return r;
}

Result<Stream> Client::hijack(const std::string& path, const std::string& body, milliseconds timeout) const {
    Stream s;
    auto r = exchange(request_text("POST", "/v" + version_ + path, body, true), Clock::now() + timeout, true, &s);
    if (!r) return std::move(r.error()).wrap("POST " + path);
    if (!s.fd) return make_error("POST " + path, "HTTP " + std::to_string(r->status) + ": " + r->body, EPROTO);
    return s;
}

std::string url_encode(const std::string& text) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

}  // namespace kiln::sandbox::docker
