#include "sandbox/mount.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "sandbox/jail_tables.h"

namespace kiln::sandbox::mount {
namespace {

struct Builder {
    Plan plan;
    std::string root;
    // Directories of the root tmpfs that belong to the jail although nothing
    // is mounted on them (/dev): the spec's files may not go there either.
    std::vector<std::string> reserved;

    std::string at(const std::string& path) const { return root + path; }
    void dir(const std::string& path) { plan.ops.push_back({OpKind::Dir, at(path)}); }
    // The intermediate directories of an absolute path, in the root tmpfs.
    void parents(const std::string& path) {
        for (std::size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1))
            dir(path.substr(0, pos));
    }
    void file(const std::string& path, std::string contents) {
        plan.ops.push_back({OpKind::File, at(path), std::move(contents)});
    }
    void symlink(const std::string& path, std::string target) {
        plan.ops.push_back({OpKind::Symlink, at(path), std::move(target)});
    }
    void tmpfs(const std::string& path, std::string options, unsigned long flags) {
        plan.ops.push_back({OpKind::Tmpfs, at(path), {}, std::move(options), flags});
    }
    void bind(const std::string& source, const std::string& path, unsigned long long attr, bool is_dir) {
        if (is_dir) dir(path);
        else file(path, {});
        plan.ops.push_back({OpKind::Bind, at(path), source, {}, 0, attr, is_dir});
    }
    // Mirrors a host path: a symlink stays a symlink, a dir or file becomes
    // a read-only bind; a missing one is skipped.
    void mirror(const std::string& source, const std::string& path) {
        struct stat st {};
        if (::lstat(source.c_str(), &st) != 0) return;
        if (S_ISLNK(st.st_mode)) {
            char buf[4096];
            ssize_t n = ::readlink(source.c_str(), buf, sizeof buf - 1);
            if (n > 0) symlink(path, std::string(buf, static_cast<std::size_t>(n)));
            return;
        }
        if (S_ISDIR(st.st_mode) && empty_dir(source)) return dir(path);  // nothing to see: no mount to pay for
        bind(source, path, KILN_ATTR_SYSTEM, S_ISDIR(st.st_mode));
    }
    static bool empty_dir(const std::string& path) {
        DIR* d = ::opendir(path.c_str());
        if (!d) return false;
        int entries = 0;
        while (const dirent* e = ::readdir(d))
            if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) ++entries;
        ::closedir(d);
        return entries == 0;
    }
};

std::string passwd_text(const SandboxSpec& spec) {
    char text[256];
    std::snprintf(text, sizeof text, KILN_ETC_PASSWD_FORMAT, spec.uid, spec.gid);
    return text;
}

std::string group_text(const SandboxSpec& spec) {
    char text[128];
    std::snprintf(text, sizeof text, KILN_ETC_GROUP_FORMAT, spec.gid);
    return text;
}

// The top-level names the jail itself provides (add_proc, add_dev, /tmp,
// /workspace; no /sys at all): a root tree's own entries there stay hidden.
constexpr const char* kJailTopLevel[] = {"proc", "dev", "tmp", "workspace", "sys"};

std::string top_level(const std::string& path) { return path.substr(1, path.find('/', 1) - 1); }

// A root directory (sandbox.rootfs, an imported image's tree): every
// top-level entry mirrored read-only, /etc included, except what the jail
// provides and the top-level directories the spec's own mounts and files
// go into, which are the jail's (the image's /opt is hidden when a bind
// targets /opt/...). An empty directory is made in the root tmpfs, not
// bound: a stock image has half a dozen (/home, /mnt, /srv...).
Status add_root_tree(Builder& b, const SandboxSpec& spec) {
    struct stat st {};
    if (::stat(spec.rootfs.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return make_error("rootfs " + spec.rootfs, "not a directory; pass a directory made by e.g. debootstrap or `kiln image import`",
                          ENOTDIR);
    std::vector<std::string> skip(std::begin(kJailTopLevel), std::end(kJailTopLevel));
    for (const auto& m : spec.mounts) skip.push_back(top_level(m.target));
    for (const auto& f : spec.files) skip.push_back(top_level(f.path));
    DIR* d = ::opendir(spec.rootfs.c_str());
    if (!d) return sys_error("opendir " + spec.rootfs, "the jail's root tree");
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name == "." || name == ".." || std::find(skip.begin(), skip.end(), name) != skip.end()) continue;
        names.push_back(name);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& name : names) b.mirror(spec.rootfs + "/" + name, "/" + name);
    return {};
}

void add_etc(Builder& b, const SandboxSpec& spec) {
    // Only what programs need; the host's other /etc files (shadow, the
    // server's configuration, credentials) are never visible.
    b.dir("/etc");
    b.file("/etc/passwd", passwd_text(spec));
    b.file("/etc/group", group_text(spec));
    b.file("/etc/hosts", KILN_ETC_HOSTS);
    b.file("/etc/nsswitch.conf", KILN_ETC_NSSWITCH);
    for (const char* name : kiln_etc_mirrored) b.mirror(name, name);
}

// /dev is a directory of the root tmpfs, read-only with it: the device
// binds sit on empty files there, and no tmpfs of its own is mounted and
// torn down per run.
void add_dev(Builder& b) {
    b.dir("/dev");
    b.reserved.push_back("/dev");
    for (const char* name : kiln_dev_bound) b.bind(name, name, KILN_ATTR_DEVICE, false);
    for (const kiln_link& link : kiln_dev_links) b.symlink(link.path, link.target);
}

// /proc, read-only: kernel-wide files no sandboxed program needs, which
// tell an attacker about the host's kernel (symbol names, the build
// configuration, loaded modules), its other users' keys and timers (the
// names and pids of host processes in timer_list, sched_debug), or its
// interrupt counts (a side channel), read as empty: /dev/null is bound over
// each file and an empty read-only tmpfs over each directory, as runc and
// Docker do for their list, which this one contains. The program's own
// /proc/self, and cpuinfo, meminfo, stat, uptime and /proc/sys, which
// runtimes read to size thread pools and heaps, stay readable.
constexpr const char* kMaskedProcFiles[] = {
    "kallsyms", "config.gz", "modules", "keys", "key-users", "kcore", "timer_list", "timer_stats",
    "sched_debug", "latency_stats", "interrupts",
};
constexpr const char* kMaskedProcDirs[] = {"acpi", "asound", "scsi"};

// A mask is mounted on what the kernel put there; the kernel of the jail
// is the host's, so what the host's /proc has the jail's has.
bool host_proc_has(const std::string& name) {
    struct stat st {};
    return ::lstat(("/proc/" + name).c_str(), &st) == 0;
}

// Mounted read-only, which covers what runc makes read-only (/proc/sys,
// bus, fs, irq, sysrq-trigger) and a process's writes to its own files
// (comm, oom_score_adj), which the Landlock ruleset refuses as well.
void add_proc(Builder& b) {
    b.dir("/proc");
    b.plan.ops.push_back({OpKind::Proc, b.at("/proc"), {}, {}, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC});
    for (const char* name : kMaskedProcFiles) {
        const std::string path = std::string("/proc/") + name;
        // The bind keeps /dev/null a device (no nodev) so that reads give
        // an empty file, not an error programs would not expect.
        if (host_proc_has(name))
            b.plan.ops.push_back({OpKind::Bind, b.at(path), "/dev/null", {}, 0, KILN_MOUNT_ATTR_RDONLY | KILN_MOUNT_ATTR_NOSUID | KILN_MOUNT_ATTR_NOEXEC, false});
    }
    for (const char* name : kMaskedProcDirs) {
        if (host_proc_has(name))
            b.tmpfs(std::string("/proc/") + name, "size=4k,nr_inodes=1,mode=0555",
                    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
    }
}

bool safe_target(const std::string& t) {
    if (t.size() < 2 || t[0] != '/' || t.back() == '/') return false;
    std::size_t start = 1;
    while (start <= t.size()) {
        std::size_t end = t.find('/', start);
        if (end == std::string::npos) end = t.size();
        std::string part = t.substr(start, end - start);
        if (part.empty() || part == "." || part == "..") return false;
        start = end + 1;
    }
    return true;
}

bool is_under(const std::string& path, const std::string& dir) {
    return path == dir || path.rfind(dir + "/", 0) == 0;
}

// Below a path the jail mounts something on: /proc, /tmp, /workspace and
// every bind target, or the host binds /usr, /bin, /etc...; or below a
// reserved directory (/dev).
bool under_a_mount(const Builder& b, const std::string& path) {
    for (const auto& dir : b.reserved)
        if (is_under(path, dir)) return true;
    for (const Op& op : b.plan.ops) {
        if (op.kind != OpKind::Bind && op.kind != OpKind::Tmpfs && op.kind != OpKind::Proc) continue;
        if (op.target == b.root) continue;  // the root tmpfs itself
        if (is_under(path, op.target.substr(b.root.size()))) return true;
    }
    return false;
}

// The root tmpfs's size: room for the synthetic /etc and the mountpoints,
// plus the spec's files.
std::string root_tmpfs_options(const SandboxSpec& spec) {
    std::uint64_t bytes = 1ull << 20;
    for (const auto& f : spec.files) bytes += (f.contents.size() + 4095) / 4096 * 4096 + 4096;
    return "size=" + std::to_string(bytes) + ",nr_inodes=4096,mode=0755";
}

Status add_files(Builder& b, const SandboxSpec& spec) {
    for (const auto& f : spec.files) {
        if (!safe_target(f.path) || f.path.rfind('/') == 0)
            return make_error("file " + f.path, "must be an absolute path in a directory, without '.', '..' or '//' (e.g. /kiln/main.py)",
                              EINVAL);
        if (under_a_mount(b, f.path))
            return make_error("file " + f.path, "is under a mounted directory; pick a directory of its own such as /kiln",
                              EINVAL);
        b.parents(f.path);
        b.file(f.path, f.contents);
    }
    return {};
}

Status add_extra_mounts(Builder& b, const SandboxSpec& spec) {
    for (const auto& m : spec.mounts) {
        if (!safe_target(m.target))
            return make_error("mount " + m.target, "bind target must be an absolute path without '.', '..' or '//'",
                              EINVAL);
        if (m.target == "/proc" || m.target.rfind("/proc/", 0) == 0 || m.target.rfind("/dev", 0) == 0)
            return make_error("mount " + m.target, "binds over /proc or /dev are not allowed", EINVAL);
        struct stat st {};
        if (::stat(m.source.c_str(), &st) != 0) return sys_error("stat " + m.source, "bind source");
        b.parents(m.target);
        unsigned long long attr = KILN_MOUNT_ATTR_NOSUID | KILN_MOUNT_ATTR_NODEV | (m.writable ? 0 : KILN_MOUNT_ATTR_RDONLY);
        b.bind(m.source, m.target, attr, S_ISDIR(st.st_mode));
        if (m.writable && S_ISDIR(st.st_mode)) b.plan.writable_dirs.push_back(m.target);
    }
    return {};
}

}  // namespace

Result<Plan> prepare(const SandboxSpec& spec) {
    if (spec.mounts.size() > kMaxExtraBinds)
        return make_error("sandbox mounts", "at most " + std::to_string(kMaxExtraBinds) + " extra binds", E2BIG);
    Builder b;
    // Staging happens over /tmp in the child's own mount namespace: every
    // bind source is opened before, so nothing the tmpfs hides is needed.
    b.plan.staging = "/tmp";
    b.root = b.plan.staging;
    b.plan.ops.push_back({OpKind::Tmpfs, b.root, {}, root_tmpfs_options(spec), MS_NOSUID | MS_NODEV});
    b.plan.read_only_after.push_back("/");

    if (!spec.rootfs.empty()) {
        if (Status st = add_root_tree(b, spec); !st) return st.error();
    } else {
        for (const char* name : kiln_system_paths) b.mirror(name, name);
        add_etc(b, spec);
    }

    add_proc(b);
    add_dev(b);

    b.dir("/tmp");
    b.tmpfs("/tmp", "size=" + std::to_string(spec.limits.tmp_size_bytes) + ",mode=1777",
            MS_NOSUID | MS_NODEV | MS_NOEXEC);
    b.plan.writable_dirs.push_back("/tmp");
    if (!spec.workspace_dir.empty()) {
        struct stat st {};
        if (::stat(spec.workspace_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            return make_error("workspace " + spec.workspace_dir, "not a directory", ENOTDIR);
        b.bind(spec.workspace_dir, "/workspace", KILN_ATTR_WRITABLE, true);
        b.plan.writable_dirs.push_back("/workspace");
    }
    if (Status st = add_extra_mounts(b, spec); !st) return st.error();
    if (Status st = add_files(b, spec); !st) return st.error();
    return std::move(b.plan);
}

}  // namespace kiln::sandbox::mount
