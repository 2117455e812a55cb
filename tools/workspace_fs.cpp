#include "tools/workspace_fs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace kiln::tools::wsfs {
namespace {

Error path_error(const std::string& path, const std::string& why) {
    return make_error("path '" + path + "'", why);
}

std::string describe_errno(const std::string& path, int err) {
    switch (err) {
        case EXDEV: return "leads outside the workspace (through '..' or a symlink); paths must stay under /workspace";
        case ENOENT: return "does not exist";
        case ENOSPC: return "no space left: the workspace quota is full (workspace.size); delete files or reset the workspace";
        case EDQUOT: return "the workspace quota is full (workspace.size)";
        case ELOOP: return "is a symbolic link (writes never go through a symlink; write to the real path)";
        case ENOTDIR: return "a parent of it is not a directory";
        case EISDIR: return "is a directory";
        case EACCES:
        case EPERM: return "permission denied";
        case ENAMETOOLONG: return "is too long";
        default: return "cannot be accessed";
    }
    (void)path;
}

Error fs_error(const std::string& path, int err) {
    Error e = path_error(path, describe_errno(path, err));
    e.err = err;
    return e;
}

std::string parent_of(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string base_of(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

Status make_parents(int root_fd, const std::string& path, Owner owner) {
    std::string dir;
    std::size_t pos = 0;
    while ((pos = path.find('/', pos)) != std::string::npos) {
        dir = path.substr(0, pos++);
        auto fd = open_beneath(root_fd, parent_of(dir), O_DIRECTORY | O_PATH);
        if (!fd) return fd.error();
        if (::mkdirat(fd->get(), base_of(dir).c_str(), 0755) == 0) {
            if (owner.uid != static_cast<uid_t>(-1))
                (void)::fchownat(fd->get(), base_of(dir).c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW);
        } else if (errno != EEXIST) {
            return fs_error(dir, errno);
        }
    }
    return {};
}

}  // namespace

Result<std::string> normalize_relative(std::string_view path, bool allow_root) {
    std::string in(path);
    if (in.find('\0') != std::string::npos) return path_error("", "contains a NUL byte");
    if (in.size() > 4096) return path_error(in.substr(0, 64) + "...", "is longer than 4096 bytes");
    if (!in.empty() && in[0] == '/')
        return path_error(in, "is absolute; give a path relative to /workspace, e.g. 'data/input.csv'");
    std::string out;
    std::size_t start = 0;
    while (start <= in.size()) {
        auto end = in.find('/', start);
        if (end == std::string::npos) end = in.size();
        std::string part = in.substr(start, end - start);
        if (part == "..") return path_error(in, "contains '..'; paths must stay under /workspace");
        if (!part.empty() && part != ".") out += (out.empty() ? "" : "/") + part;
        start = end + 1;
    }
    if (out.empty()) {
        if (allow_root) return std::string(".");
        return path_error(in, "names the workspace itself; give a file path such as 'notes.txt'");
    }
    return out;
}

Result<UniqueFd> open_beneath(int root_fd, const std::string& path, int flags, mode_t mode) {
    struct open_how how {};
    how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    int fd;
    do {
        fd = static_cast<int>(::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof how));
    } while (fd < 0 && errno == EAGAIN);
    if (fd < 0) return fs_error(path, errno);
    return UniqueFd(fd);
}

Status write_file(int root_fd, const std::string& path, std::string_view data, Owner owner) {
    if (Status st = make_parents(root_fd, path, owner); !st) return st;
    // O_NOFOLLOW: the final component must not be a symlink at all, so a
    // link planted by the jail cannot redirect the write even inside.
    auto fd = open_beneath(root_fd, path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (!fd) return fd.error();
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return fs_error(path, errno);
    if (!S_ISREG(st.st_mode)) return path_error(path, "exists and is not a regular file");
    if (::ftruncate(fd->get(), 0) != 0) return fs_error(path, errno);
    while (!data.empty()) {
        ssize_t n = ::write(fd->get(), data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            (void)::ftruncate(fd->get(), 0);  // no half-written file left behind
            return fs_error(path, err);
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    if (owner.uid != static_cast<uid_t>(-1) && ::fchown(fd->get(), owner.uid, owner.gid) != 0)
        return fs_error(path, errno);
    return {};
}

Result<FileData> read_file(int root_fd, const std::string& path, std::uint64_t max_bytes) {
    // O_NONBLOCK: a FIFO planted by the jail must not hang the server.
    // Symlinks are followed as long as they stay beneath the workspace.
    auto fd = open_beneath(root_fd, path, O_RDONLY | O_NONBLOCK);
    if (!fd) return fd.error();
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return fs_error(path, errno);
    if (S_ISDIR(st.st_mode)) return path_error(path, "is a directory; use list_files");
    if (!S_ISREG(st.st_mode)) return path_error(path, "is not a regular file");
    FileData out;
    out.size = static_cast<std::uint64_t>(st.st_size);
    std::uint64_t want = std::min<std::uint64_t>(out.size, max_bytes);
    out.bytes.resize(want);
    std::uint64_t got = 0;
    while (got < want) {
        ssize_t n = ::read(fd->get(), out.bytes.data() + got, want - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fs_error(path, errno);
        if (n == 0) break;
        got += static_cast<std::uint64_t>(n);
    }
    out.bytes.resize(got);
    out.truncated = got < out.size;
    return out;
}

namespace {

Status list_dir(int dir_fd, const std::string& prefix, bool recursive, std::size_t max_entries,
                std::vector<Entry>& out, bool* truncated) {
    int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return sys_error("list " + prefix);
    DIR* dir = ::fdopendir(dup_fd);
    if (!dir) {
        ::close(dup_fd);
        return sys_error("list " + prefix);
    }
    std::vector<std::string> subdirs;
    while (struct dirent* d = ::readdir(dir)) {
        std::string name = d->d_name;
        if (name == "." || name == "..") continue;
        if (out.size() >= max_entries) {
            *truncated = true;
            break;
        }
        struct stat st {};
        if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        Entry e;
        e.path = prefix.empty() || prefix == "." ? name : prefix + "/" + name;
        e.type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : S_ISLNK(st.st_mode) ? "symlink" : "other";
        e.size = S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
        if (S_ISDIR(st.st_mode)) subdirs.push_back(name);
        out.push_back(std::move(e));
    }
    ::closedir(dir);
    if (!recursive || *truncated) return {};
    for (const auto& name : subdirs) {
        int sub = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) continue;
        UniqueFd guard(sub);
        std::string sub_prefix = prefix.empty() || prefix == "." ? name : prefix + "/" + name;
        if (Status st = list_dir(sub, sub_prefix, true, max_entries, out, truncated); !st) return st;
        if (*truncated) break;
    }
    return {};
}

}  // namespace

Result<std::vector<Entry>> list(int root_fd, const std::string& path, bool recursive, std::size_t max_entries,
                                bool* truncated) {
    *truncated = false;
    auto fd = open_beneath(root_fd, path, O_RDONLY | O_DIRECTORY);
    if (!fd) return fd.error();
    std::vector<Entry> out;
    if (Status st = list_dir(fd->get(), path == "." ? "" : path, recursive, max_entries, out, truncated); !st)
        return st.error();
    return out;
}

Status remove_contents(int dir_fd) {
    bool truncated = false;
    std::vector<Entry> entries;
    if (Status st = list_dir(dir_fd, "", false, SIZE_MAX, entries, &truncated); !st) return st;
    for (const auto& e : entries) {
        if (e.type == "directory") {
            int sub = ::openat(dir_fd, e.path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) return fs_error(e.path, errno);
            UniqueFd guard(sub);
            if (Status st = remove_contents(sub); !st) return st;
            if (::unlinkat(dir_fd, e.path.c_str(), AT_REMOVEDIR) != 0) return fs_error(e.path, errno);
        } else if (::unlinkat(dir_fd, e.path.c_str(), 0) != 0) {
            return fs_error(e.path, errno);
        }
    }
    return {};
}

Status remove(int root_fd, const std::string& path) {
    auto parent = open_beneath(root_fd, parent_of(path), O_RDONLY | O_DIRECTORY);
    if (!parent) return parent.error();
    std::string name = base_of(path);
    struct stat st {};
    if (::fstatat(parent->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return fs_error(path, errno);
    if (S_ISDIR(st.st_mode)) {
        int sub = ::openat(parent->get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) return fs_error(path, errno);
        UniqueFd guard(sub);
        if (Status s = remove_contents(sub); !s) return s;
        if (::unlinkat(parent->get(), name.c_str(), AT_REMOVEDIR) != 0) return fs_error(path, errno);
        return {};
    }
    if (::unlinkat(parent->get(), name.c_str(), 0) != 0) return fs_error(path, errno);
    return {};
}

}  // namespace kiln::tools::wsfs
