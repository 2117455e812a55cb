#include "tools/workspace_fs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <thread>

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

// openat2() fails with EAGAIN in two cases. A rename or mount raced with
// the RESOLVE_BENEATH lookup, and trying again succeeds at once. Or, with
// O_NONBLOCK, another process holds a lease on the file (fcntl F_SETLEASE):
// the kernel has asked the holder to let go, the holder may take up to
// /proc/sys/fs/lease-break-time (45 s by default), and each retry gets
// EAGAIN until then. So retry with growing sleeps for a short while only.
constexpr std::chrono::milliseconds kLeaseWait{500};

int openat2_retrying(int root_fd, const std::string& path, const open_how& how) {
    auto deadline = std::chrono::steady_clock::now() + kLeaseWait;
    std::chrono::microseconds pause{500};
    for (;;) {
        int fd = static_cast<int>(::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof how));
        if (fd >= 0 || errno != EAGAIN) return fd;
        if (std::chrono::steady_clock::now() + pause > deadline) {
            errno = EAGAIN;
            return -1;
        }
        std::this_thread::sleep_for(pause);
        pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(50));
    }
}

Error lease_error(const std::string& path) {
    Error e = path_error(path, "is held by a lease (fcntl F_SETLEASE) that another process, most likely a run of "
                               "this session, still holds, and it did not let go within " +
                                   std::to_string(kLeaseWait.count()) +
                                   " ms; wait for that run to end or stop it, then try again");
    e.err = EAGAIN;
    return e;
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
    int fd = openat2_retrying(root_fd, path, how);
    if (fd < 0) return errno == EAGAIN ? lease_error(path) : fs_error(path, errno);
    return UniqueFd(fd);
}

Status make_directories(int root_fd, const std::string& path, Owner owner) {
    return make_parents(root_fd, path + "/", owner);
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

// Where a directory is, whatever its name: a walk going back up through
// ".." compares what it finds with what it left.
struct DirId {
    dev_t dev = 0;
    ino_t ino = 0;
    bool operator==(const DirId&) const = default;
};

Result<DirId> id_of(int fd, const std::string& what) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return fs_error(what, errno);
    return DirId{st.st_dev, st.st_ino};
}

// Opens the directory `name` of dir_fd: never through a symlink, never into
// another filesystem mounted there (EXDEV).
int open_subdir(int dir_fd, const char* name) {
    struct open_how how {};
    how.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV;
    return static_cast<int>(::syscall(SYS_openat2, dir_fd, name, &how, sizeof how));
}

// A new open file description of the same directory: the walk moves its
// read position, which a dup() would share with the caller's descriptor.
int reopen_dir(int dir_fd, const char* relative) {
    return ::openat(dir_fd, relative, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

// Reads one directory through getdents64, a batch at a time. Each entry
// carries the offset of the entry after it, so a walk can leave the
// directory and later resume there on a fresh descriptor.
class DirReader {
public:
    struct Item {
        const char* name;  // valid until the next call
        unsigned char type;  // DT_*, DT_UNKNOWN on some filesystems
        off_t next;
    };

    DirReader() : buf_(32 << 10) {}

    bool start(int fd, off_t offset) {
        fd_ = fd;
        pos_ = len_ = 0;
        return ::lseek(fd, offset, SEEK_SET) == offset;
    }

    // false at the end of the directory; ENOENT once it has been removed.
    Result<bool> next(Item& item) {
        for (;;) {
            if (pos_ >= len_) {
                ssize_t n = ::getdents64(fd_, buf_.data(), buf_.size());
                if (n < 0) return fs_error("(a directory being walked)", errno);
                if (n == 0) return false;
                len_ = static_cast<std::size_t>(n);
                pos_ = 0;
            }
            const auto* d = reinterpret_cast<const struct dirent64*>(buf_.data() + pos_);
            pos_ += d->d_reclen;
            if (std::strcmp(d->d_name, ".") == 0 || std::strcmp(d->d_name, "..") == 0) continue;
            item = {d->d_name, d->d_type, d->d_off};
            return true;
        }
    }

private:
    int fd_ = -1;
    std::vector<char> buf_;
    std::size_t pos_ = 0;
    std::size_t len_ = 0;
};

const char* type_name(mode_t mode) {
    if (S_ISREG(mode)) return "file";
    if (S_ISDIR(mode)) return "directory";
    if (S_ISLNK(mode)) return "symlink";
    return "other";
}

// A depth-first listing with one open directory at a time. Going down it
// notes where to resume in the parent; going up it reopens the parent
// through ".." and checks it is the directory it left, so a run that moves
// directories meanwhile ends the listing (Truncation::Changed) instead of
// steering it elsewhere.
class Lister {
public:
    Lister(const ListLimits& limits, bool recursive, std::string prefix)
        : limits_(limits), recursive_(recursive), prefix_(std::move(prefix)) {}

    Result<Listing> run(UniqueFd dir) {
        auto id = id_of(dir.get(), prefix_.empty() ? "." : prefix_);
        if (!id) return id.error();
        enter(std::move(dir), *id, 0);
        for (;;) {
            DirReader::Item item{};
            auto more = reader_.next(item);
            if (!more) {
                if (more.error().err != ENOENT) return more.error();
                note(Truncation::Changed);
                break;
            }
            if (!*more) {
                if (up_.empty() || !leave()) break;
                continue;
            }
            if (!visit(item)) break;
        }
        return std::move(out_);
    }

private:
    struct Frame {
        DirId dir;
        off_t resume;
        std::size_t prefix_size;
    };

    void note(Truncation why) {
        if (out_.truncated == Truncation::None || why != Truncation::Depth) out_.truncated = why;
    }

    // Records one entry; false when a limit ends the listing.
    bool visit(const DirReader::Item& item) {
        if (out_.entries.size() >= limits_.max_entries) {
            note(Truncation::Entries);
            return false;
        }
        struct stat st {};
        if (::fstatat(cur_.get(), item.name, &st, AT_SYMLINK_NOFOLLOW) != 0) return true;  // gone meanwhile
        Entry e{prefix_.empty() ? item.name : prefix_ + "/" + item.name, type_name(st.st_mode),
                S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0,
                std::int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec, st.st_ino};
        std::size_t cost = e.path.size() + kListEntryOverhead;
        if (bytes_ + cost > limits_.max_bytes) {
            note(Truncation::Bytes);
            return false;
        }
        bytes_ += cost;
        out_.entries.push_back(std::move(e));
        if (recursive_ && S_ISDIR(st.st_mode)) descend(item);
        return true;
    }

    void descend(const DirReader::Item& item) {
        if (up_.size() + 1 >= limits_.max_depth) {
            note(Truncation::Depth);
            return;
        }
        // A directory that vanished, became a symlink or is another
        // filesystem is listed but not entered.
        UniqueFd child(open_subdir(cur_.get(), item.name));
        if (!child) return;
        auto id = id_of(child.get(), out_.entries.back().path);
        if (!id) return;
        up_.push_back({cur_id_, item.next, prefix_.size()});
        prefix_ = out_.entries.back().path;
        enter(std::move(child), *id, 0);
    }

    // Back to the parent where the walk left it; false if it moved.
    bool leave() {
        Frame f = up_.back();
        up_.pop_back();
        UniqueFd parent(reopen_dir(cur_.get(), ".."));
        auto id = parent ? id_of(parent.get(), "..") : Result<DirId>(fs_error("..", errno));
        if (!id || !(*id == f.dir)) {
            note(Truncation::Changed);
            return false;
        }
        prefix_.resize(f.prefix_size);
        return enter(std::move(parent), f.dir, f.resume);
    }

    bool enter(UniqueFd dir, DirId id, off_t offset) {
        cur_ = std::move(dir);
        cur_id_ = id;
        if (reader_.start(cur_.get(), offset)) return true;
        note(Truncation::Changed);
        return false;
    }

    const ListLimits& limits_;
    bool recursive_;
    std::string prefix_;  // path of the directory being read, "" for the listed one when it is the root
    UniqueFd cur_;
    DirId cur_id_;
    std::vector<Frame> up_;
    DirReader reader_;
    std::size_t bytes_ = 0;
    Listing out_;
};

// Empties a tree from the bottom up with one open directory at a time and
// no recursion: unlink what can go, go down into the first directory that
// is not empty, come back up through ".." once a directory is empty, and
// let the parent's next pass remove it. The way up is checked against the
// identities of the directories the walk came down through; if a run moved
// a directory meanwhile, the walk starts again from the top, so it never
// acts above dir_fd.
class Emptier {
public:
    explicit Emptier(int root_fd) : root_fd_(root_fd) {}

    Status run() {
        auto id = id_of(root_fd_, ".");
        if (!id) return id.error();
        root_id_ = *id;
        if (Status st = from_the_top(); !st) return st;
        for (;;) {
            auto pass = sweep();
            if (!pass) return pass.error();
            switch (*pass) {
                case Pass::Descended:
                case Pass::Removed: continue;
                case Pass::Empty:
                    if (up_.empty()) return {};
                    if (Status st = climb(); !st) return st;
                    continue;
            }
        }
    }

private:
    enum class Pass { Descended, Removed, Empty };

    // A run writing or moving directories while the tree is emptied can
    // keep the walk busy; past this many surprises it gives up.
    static constexpr unsigned kMaxSurprises = 1000;

    Status surprised() {
        if (++surprises_ <= kMaxSurprises) return {};
        Error e = make_error("empty the workspace",
                             "the directory tree kept changing while it was emptied (a run is still writing to it "
                             "or moving directories); wait for this session's runs to end, then try again");
        e.err = EBUSY;
        return e;
    }

    Status from_the_top() {
        cur_.reset(reopen_dir(root_fd_, "."));
        if (!cur_) return fs_error(".", errno);
        cur_id_ = root_id_;
        up_.clear();
        return {};
    }

    // One pass over the current directory.
    Result<Pass> sweep() {
        if (!reader_.start(cur_.get(), 0)) return fs_error("(a directory being emptied)", errno);
        bool removed = false;
        for (;;) {
            DirReader::Item item{};
            auto more = reader_.next(item);
            if (!more) {
                // ENOENT: the directory itself was removed under the walk.
                if (more.error().err != ENOENT) return more.error();
                if (Status st = surprised(); !st) return st.error();
                if (Status st = from_the_top(); !st) return st.error();
                return Pass::Removed;
            }
            if (!*more) return removed ? Pass::Removed : Pass::Empty;
            auto done = take(item);
            if (!done) return done.error();
            if (*done == Pass::Descended) return Pass::Descended;
            removed = true;
        }
    }

    // Removes one entry, or goes down into it when it is a directory with
    // something in it.
    Result<Pass> take(const DirReader::Item& item) {
        unsigned char type = item.type;
        if (type == DT_UNKNOWN) {
            struct stat st {};
            if (::fstatat(cur_.get(), item.name, &st, AT_SYMLINK_NOFOLLOW) != 0) return Pass::Removed;
            type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
        }
        int flags = type == DT_DIR ? AT_REMOVEDIR : 0;
        if (::unlinkat(cur_.get(), item.name, flags) == 0 || errno == ENOENT) return Pass::Removed;
        int err = errno;
        // The entry changed type since it was read: look again next pass.
        if (err == EISDIR || err == ENOTDIR) {
            if (Status st = surprised(); !st) return st.error();
            return Pass::Removed;
        }
        if (type != DT_DIR || (err != ENOTEMPTY && err != EEXIST)) return fs_error(item.name, err);
        return descend(item);
    }

    Result<Pass> descend(const DirReader::Item& item) {
        UniqueFd child(open_subdir(cur_.get(), item.name));
        if (!child) {
            int err = errno;
            if (err != ENOENT && err != ENOTDIR && err != ELOOP && err != EAGAIN) return fs_error(item.name, err);
            if (Status st = surprised(); !st) return st.error();
            return Pass::Removed;
        }
        auto id = id_of(child.get(), item.name);
        if (!id) return id.error();
        // Back in a directory already emptied: something is filling it.
        if (*id == last_emptied_)
            if (Status st = surprised(); !st) return st.error();
        up_.push_back(cur_id_);
        cur_ = std::move(child);
        cur_id_ = *id;
        return Pass::Descended;
    }

    Status climb() {
        last_emptied_ = cur_id_;
        UniqueFd parent(reopen_dir(cur_.get(), ".."));
        auto id = parent ? id_of(parent.get(), "..") : Result<DirId>(fs_error("..", errno));
        if (!id || !(*id == up_.back())) {
            if (Status st = surprised(); !st) return st;
            return from_the_top();
        }
        cur_ = std::move(parent);
        cur_id_ = *id;
        up_.pop_back();
        return {};
    }

    int root_fd_;
    DirId root_id_;
    UniqueFd cur_;
    DirId cur_id_;
    std::vector<DirId> up_;  // the directories above cur_, the top first
    DirId last_emptied_;
    DirReader reader_;
    unsigned surprises_ = 0;
};

}  // namespace

const char* to_string(Truncation t) {
    switch (t) {
        case Truncation::None: return "none";
        case Truncation::Entries: return "entries";
        case Truncation::Bytes: return "bytes";
        case Truncation::Depth: return "depth";
        case Truncation::Changed: return "changed";
    }
    return "unknown";
}

Result<Listing> list(int root_fd, const std::string& path, bool recursive, const ListLimits& limits) {
    auto fd = open_beneath(root_fd, path, O_RDONLY | O_DIRECTORY);
    if (!fd) return fd.error();
    return Lister(limits, recursive, path == "." ? "" : path).run(std::move(*fd));
}

Status remove_contents(int dir_fd) { return Emptier(dir_fd).run(); }

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
