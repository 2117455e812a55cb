// libFuzzer entry for the workspace path resolver (tools/workspace_fs):
// normalize_relative(), the lexical check every agent-given path passes, and
// open_beneath(), the openat2(RESOLVE_BENEATH) open that confines it.
//
// It runs on a real directory tree made once per process under $TMPDIR:
//
//   outside/secret.txt            what no path may reach
//   ws/notes.txt, ws/dir/inner.txt
//   ws/out -> ../outside          relative link climbing out
//   ws/abs -> <tmp>/outside       absolute link to the outside
//   ws/etc -> /etc                absolute link to the host
//   ws/dir/up -> ../..            link two levels up (past the workspace)
//   ws/dir/sib -> ../notes.txt    link that stays inside
//   ws/self -> .  ws/loop -> loop
//
// Checked on every input: whatever normalize_relative() accepts is relative,
// free of NUL, "." and ".." components and empty parts, and names the same
// components as the input; and whatever open_beneath() opens - given the
// normalized path or the raw bytes, following links or not - is the
// workspace or lies beneath it (its /proc/self/fd link says so).
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "tools/workspace_fs.hpp"

namespace {

namespace fs = std::filesystem;
namespace wsfs = kiln::tools::wsfs;

[[noreturn]] void fail(const char* what, std::string_view path) {
    std::fprintf(stderr, "fuzz_workspace_path: %s: '%.*s'\n", what, static_cast<int>(path.size()), path.data());
    std::abort();
}

struct Tree {
    fs::path top;         // the temporary directory holding both trees
    std::string ws_real;  // the workspace's real path
    int ws_fd = -1;

    Tree() {
        std::string tmpl = (fs::temp_directory_path() / "kiln-fuzz-ws-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) fail("mkdtemp", tmpl);
        top = fs::canonical(tmpl);
        fs::create_directories(top / "outside");
        fs::create_directories(top / "ws" / "dir");
        write(top / "outside" / "secret.txt");
        write(top / "ws" / "notes.txt");
        write(top / "ws" / "dir" / "inner.txt");
        fs::create_directory_symlink("../outside", top / "ws" / "out");
        fs::create_directory_symlink(top / "outside", top / "ws" / "abs");
        fs::create_directory_symlink("/etc", top / "ws" / "etc");
        fs::create_directory_symlink("../..", top / "ws" / "dir" / "up");
        fs::create_symlink("../notes.txt", top / "ws" / "dir" / "sib");
        fs::create_directory_symlink(".", top / "ws" / "self");
        fs::create_symlink("loop", top / "ws" / "loop");
        ws_real = (top / "ws").string();
        ws_fd = ::open(ws_real.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (ws_fd < 0) fail("open the workspace", ws_real);
    }
    ~Tree() {
        ::close(ws_fd);
        std::error_code ignored;
        fs::remove_all(top, ignored);
    }
    static void write(const fs::path& p) {
        if (FILE* f = std::fopen(p.c_str(), "w")) std::fclose(f);
    }
};

const Tree& tree() {
    static const Tree t;  // destroyed at exit, which removes the directory
    return t;
}

// The input's components without empty parts and ".", joined by '/'.
std::string lexical_components(std::string_view in) {
    std::string out;
    std::size_t start = 0;
    while (start <= in.size()) {
        auto end = std::min(in.find('/', start), in.size());
        std::string_view part = in.substr(start, end - start);
        if (!part.empty() && part != ".") out += (out.empty() ? "" : "/") + std::string(part);
        start = end + 1;
    }
    return out;
}

void check_normalized(std::string_view input, bool allow_root) {
    auto r = wsfs::normalize_relative(input, allow_root);
    if (!r) return;
    const std::string& out = *r;
    if (out == ".") {
        if (!allow_root) fail("the workspace itself accepted as a file path", input);
        if (!lexical_components(input).empty()) fail("a named path normalized to '.'", input);
        return;
    }
    if (out.empty() || out.front() == '/') fail("accepted an empty or absolute path", input);
    if (out.find('\0') != std::string::npos) fail("accepted a NUL byte", input);
    if (out.size() > 4096) fail("accepted a path over 4096 bytes", input);
    std::string_view rest = out;
    while (!rest.empty()) {
        auto slash = rest.find('/');
        std::string_view part = rest.substr(0, slash);
        if (part.empty() || part == "." || part == "..") fail("accepted an empty, '.' or '..' component", input);
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    if (out != lexical_components(input)) fail("normalized to other components than the input's", input);
}

// Whatever the kernel lets open_beneath() open must be inside the workspace.
void check_opened_inside(const std::string& path) {
    const std::string& root = tree().ws_real;
    for (int flags : {O_PATH, O_PATH | O_NOFOLLOW, O_RDONLY | O_NONBLOCK}) {
        auto fd = wsfs::open_beneath(tree().ws_fd, path, flags);
        if (!fd) continue;
        char target[4096];
        std::string link = "/proc/self/fd/" + std::to_string(fd->get());
        ssize_t n = ::readlink(link.c_str(), target, sizeof target);
        if (n <= 0) fail("readlink of an opened fd", path);
        std::string_view where(target, static_cast<std::size_t>(n));
        if (where != root && !(where.size() > root.size() && where.substr(0, root.size()) == root &&
                               where[root.size()] == '/'))
            fail("opened something outside the workspace", path);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    check_normalized(input, false);
    check_normalized(input, true);
    if (auto normalized = wsfs::normalize_relative(input, true)) check_opened_inside(*normalized);
    // The kernel must confine even a path that never went through the
    // lexical check: the raw bytes, up to the first NUL.
    check_opened_inside(std::string(input.substr(0, input.find('\0'))));
    return 0;
}
