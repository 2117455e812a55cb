#include "sandbox/child.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace kiln::sandbox {

std::size_t cstr_len(const char* s) noexcept {
    std::size_t n = 0;
    while (s && s[n]) ++n;
    return n;
}

bool fail(ChildError& e, kiln_hint hint, const char* what, const char* arg) noexcept {
    e.err = errno;
    e.hint = hint;
    std::size_t i = 0;
    auto append = [&](const char* s) {
        for (; s && *s && i + 1 < sizeof e.step; ++s) e.step[i++] = *s;
    };
    append(what);
    if (arg) {
        append(" ");
        append(arg);
    }
    e.step[i] = '\0';
    return false;
}

bool write_all(int fd, const void* data, std::size_t len) noexcept {
    const char* p = static_cast<const char*>(data);
    while (len > 0) {
        ssize_t n = ::write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= static_cast<std::size_t>(n);
    }
    return true;
}

bool write_file(const char* path, const char* data, std::size_t len) noexcept {
    int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    bool ok = write_all(fd, data, len);
    int saved = errno;
    ::close(fd);
    errno = saved;
    return ok;
}

}  // namespace kiln::sandbox
