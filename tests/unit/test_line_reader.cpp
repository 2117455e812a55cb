#include <doctest/doctest.h>

#include <unistd.h>

#include <thread>

#include "server/stdio_transport.hpp"

using kiln::server::LineReader;

TEST_CASE("line reader frames messages and skips oversized lines without buffering them") {
    int p[2];
    REQUIRE(pipe(p) == 0);
    std::thread writer([fd = p[1]] {
        std::string data = "{\"a\":1}\r\n\n   \n" + std::string(300'000, 'x') + "\n{\"b\":2}\n{\"c\":3}";
        size_t off = 0;
        while (off < data.size()) {
            ssize_t n = ::write(fd, data.data() + off, data.size() - off);
            if (n <= 0) break;
            off += static_cast<size_t>(n);
        }
        ::close(fd);
    });
    std::vector<std::string> lines;
    std::vector<size_t> oversized;
    LineReader reader(p[0], 100'000);
    auto end = reader.run([&](std::string_view l) { lines.emplace_back(l); }, [&](size_t n) { oversized.push_back(n); });
    writer.join();
    ::close(p[0]);
    CHECK(end == LineReader::End::Eof);
    CHECK(lines == std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"});
    REQUIRE(oversized.size() == 1);
    CHECK(oversized[0] == 300'000);
}

// Found by tests/fuzz/fuzz_line_reader: an oversized last line without a
// newline was dropped at EOF without a word, so its sender got no error.
TEST_CASE("an oversized last line without a newline is still reported") {
    int p[2];
    REQUIRE(pipe(p) == 0);
    const std::string data = "{\"a\":1}\n" + std::string(150, 'x');
    REQUIRE(::write(p[1], data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    ::close(p[1]);
    std::vector<std::string> lines;
    std::vector<size_t> oversized;
    LineReader reader(p[0], 100);
    auto end = reader.run([&](std::string_view l) { lines.emplace_back(l); }, [&](size_t n) { oversized.push_back(n); });
    ::close(p[0]);
    CHECK(end == LineReader::End::Eof);
    CHECK(lines == std::vector<std::string>{"{\"a\":1}"});
    CHECK(oversized == std::vector<size_t>{150});
}
