// libFuzzer entry for the stdio transport's line reader (LineReader). The
// input chooses a message limit and how the byte stream is cut into reads;
// the rest is the stream. It arrives through a SOCK_SEQPACKET socket, where
// every write is exactly one read, so the cut points are the fuzzer's to
// choose (a pipe would merge them).
//
// Checked on every input: each line handed on is at most the limit and holds
// no newline; and what the reader reports (lines and oversized sizes, in
// order) equals what a plain split of the whole stream says it must report.
//
// Input layout: byte 0 -> limit 1..64; byte 1 -> number of cuts (0..15);
// the next `cuts` bytes -> read sizes 1..256; the rest is the stream.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "server/line_reader.hpp"

namespace {

using kiln::server::LineReader;

// What the reader reported: a line, or an oversized line of `size` bytes.
struct Event {
    bool oversized = false;
    std::string line;
    std::size_t size = 0;
    bool operator==(const Event&) const = default;
};

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_line_reader: %s\n", what);
    std::abort();
}

// The documented framing, written as simply as possible: split on '\n';
// a line longer than the limit (counting a trailing '\r') is reported by its
// size; otherwise one trailing '\r' is dropped and a line of only spaces and
// tabs is ignored. A last line without a newline counts the same.
std::vector<Event> expected_events(std::string_view stream, std::size_t limit) {
    std::vector<Event> out;
    while (!stream.empty()) {
        auto nl = stream.find('\n');
        std::string_view line = stream.substr(0, nl);
        if (line.size() > limit) {
            out.push_back({true, "", line.size()});
        } else {
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line.find_first_not_of(" \t") != std::string_view::npos) out.push_back({false, std::string(line), 0});
        }
        if (nl == std::string_view::npos) break;
        stream.remove_prefix(nl + 1);
    }
    return out;
}

// Sends the stream in records of the chosen sizes (the last one takes the
// rest), then ends it, so the reader sees EOF after the last record.
void send_stream(int fd, std::string_view stream, const std::vector<std::size_t>& cuts) {
    std::size_t i = 0;
    while (!stream.empty()) {
        std::size_t n = i < cuts.size() ? std::min(cuts[i++], stream.size()) : stream.size();
        if (::send(fd, stream.data(), n, MSG_NOSIGNAL) != static_cast<ssize_t>(n)) fail("send");
        stream.remove_prefix(n);
    }
    ::shutdown(fd, SHUT_WR);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::size_t limit = 1 + data[0] % 64;
    const std::size_t ncuts = data[1] % 16;
    if (size < 2 + ncuts) return 0;
    std::vector<std::size_t> cuts;
    for (std::size_t i = 0; i < ncuts; ++i) cuts.push_back(1 + data[2 + i]);
    std::string_view stream(reinterpret_cast<const char*>(data) + 2 + ncuts, size - 2 - ncuts);
    // One record may be the whole rest of the input: fuzz inputs are kept
    // small (run.sh: -max_len), well under the socket's buffer.
    if (stream.size() > 16384) return 0;

    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) fail("socketpair");
    send_stream(sv[1], stream, cuts);

    std::vector<Event> events;
    LineReader reader(sv[0], limit);
    auto end = reader.run(
        [&](std::string_view line) {
            if (line.size() > limit) fail("a line longer than the limit was handed on");
            if (line.find('\n') != std::string_view::npos) fail("a line holds a newline");
            events.push_back({false, std::string(line), 0});
        },
        [&](std::size_t n) {
            if (n <= limit) fail("a line within the limit was called oversized");
            events.push_back({true, "", n});
        });
    ::close(sv[0]);
    ::close(sv[1]);
    if (end != LineReader::End::Eof) fail("the reader did not stop at EOF");
    if (events != expected_events(stream, limit)) fail("the reader's lines differ from a plain split of the stream");
    return 0;
}
