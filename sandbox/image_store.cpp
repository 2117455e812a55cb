#include "sandbox/image_store.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/libcrypto.hpp"
#include "common/unique_fd.hpp"

namespace kiln::sandbox::image {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- small helpers --------------------------------------------------------

struct ArchiveReadFree {
    void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteFree {
    void operator()(archive* a) const { archive_write_free(a); }
};
using ReadArchive = std::unique_ptr<archive, ArchiveReadFree>;
using WriteArchive = std::unique_ptr<archive, ArchiveWriteFree>;

// A directory removed with everything in it unless release()d: a failed
// import leaves nothing behind.
class StagingDir {
public:
    explicit StagingDir(std::string path) : path_(std::move(path)) {}
    ~StagingDir() {
        if (!path_.empty()) remove_tree(path_);
    }
    StagingDir(const StagingDir&) = delete;
    StagingDir& operator=(const StagingDir&) = delete;
    const std::string& path() const { return path_; }
    void release() { path_.clear(); }

    // The tree's directories have no write bit once finished: give it back
    // so that an unprivileged owner can delete their entries.
    static void remove_tree(const std::string& path) {
        std::error_code ec;
        for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
        }
        ::chmod(path.c_str(), 0700);
        fs::remove_all(path, ec);
    }

private:
    std::string path_;
};

std::string hex_of(const unsigned char* md, unsigned len) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out.push_back(hex[md[i] >> 4]);
        out.push_back(hex[md[i] & 0xF]);
    }
    return out;
}

Result<std::string> sha256_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return sys_error("open " + path, "cannot read the blob");
    const crypto::LibCrypto& c = crypto::lib();
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(c.EVP_MD_CTX_new(), c.EVP_MD_CTX_free);
    c.EVP_DigestInit_ex(ctx.get(), c.EVP_sha256(), nullptr);
    std::array<char, 1 << 16> buf;
    while (in) {
        in.read(buf.data(), buf.size());
        if (in.gcount() > 0) c.EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(in.gcount()));
    }
    unsigned char md[32];
    unsigned len = 0;
    c.EVP_DigestFinal_ex(ctx.get(), md, &len);
    return "sha256:" + hex_of(md, len);
}

Result<json> read_json(const std::string& path, const std::string& what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return sys_error("open " + path, "cannot read the " + what);
    json j = json::parse(in, nullptr, false);
    if (j.is_discarded()) return make_error("parse " + path, "the " + what + " is not valid JSON", EINVAL);
    return j;
}

Status write_file_atomic(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) return sys_error("create " + tmp);
        out << text;
        if (!out.flush()) return sys_error("write " + tmp);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) return sys_error("rename " + tmp, "to " + path);
    return {};
}

bool valid_digest(const std::string& d) {
    if (d.size() != 71 || d.rfind("sha256:", 0) != 0) return false;
    return std::all_of(d.begin() + 7, d.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Splits a layer entry's path into its parts: leading "./" and trailing '/'
// dropped; absolute paths and ".." parts refused (empty result: the root).
Result<std::vector<std::string>> entry_parts(const std::string& raw, const std::string& what) {
    if (!raw.empty() && raw[0] == '/')
        return make_error(what, "is an absolute path; a layer's paths are relative to the image's root", EPERM);
    std::vector<std::string> parts;
    std::stringstream ss(raw);
    for (std::string p; std::getline(ss, p, '/');) {
        if (p.empty() || p == ".") continue;
        if (p == "..") return make_error(what, "has a '..' part that would leave the image's root", EPERM);
        parts.push_back(p);
    }
    return parts;
}

std::string join(const std::vector<std::string>& parts, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n && i < parts.size(); ++i) out += (i ? "/" : "") + parts[i];
    return out;
}

// A path inside the unpacked archive named by its manifest: relative,
// without "..", and still inside once symbolic links are resolved (old
// `docker save` links duplicate layers to one another).
Result<std::string> blob_path(const std::string& root, const std::string& rel) {
    auto parts = entry_parts(rel, "archive path '" + rel + "'");
    if (!parts) return parts.error();
    std::error_code ec;
    fs::path real = fs::canonical(root + "/" + join(*parts, parts->size()), ec);
    if (ec) return make_error("archive path '" + rel + "'", "is named by the manifest but missing from the archive", ENOENT);
    std::string r = real.string();
    if (r.rfind(root + "/", 0) != 0) return make_error("archive path '" + rel + "'", "leaves the archive", EPERM);
    return r;
}

std::string archive_message(archive* a) {
    const char* s = archive_error_string(a);
    return s ? s : "unknown libarchive error";
}

// Copies the current entry's data from an archive to the disk writer.
Status copy_data(archive* in, archive* out, const std::string& what) {
    const void* buf;
    size_t size;
    la_int64_t offset;
    int rc;
    while ((rc = archive_read_data_block(in, &buf, &size, &offset)) == ARCHIVE_OK)
        if (archive_write_data_block(out, buf, size, offset) != ARCHIVE_OK)
            return make_error("write " + what, archive_message(out), EIO);
    if (rc != ARCHIVE_EOF) return make_error("read " + what, archive_message(in), EIO);
    return {};
}

// ---- the outer archive ----------------------------------------------------

// Unpacks the image archive (a plain tar) into dir: regular files,
// directories and symbolic links only, never outside dir.
Status unpack_outer(const std::string& file, const std::string& dir) {
    ReadArchive in(archive_read_new());
    archive_read_support_filter_all(in.get());
    archive_read_support_format_tar(in.get());
    if (archive_read_open_filename(in.get(), file.c_str(), 1 << 16) != ARCHIVE_OK)
        return make_error("open " + file, archive_message(in.get()) + "; give a `docker save` or OCI archive tarball", EINVAL);
    WriteArchive out(archive_write_disk_new());
    // Paths are made absolute below dir by this code, after entry_parts().
    archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS);
    archive_entry* e = nullptr;
    int rc;
    while ((rc = archive_read_next_header(in.get(), &e)) == ARCHIVE_OK) {
        const std::string name = archive_entry_pathname(e);
        auto parts = entry_parts(name, "archive entry '" + name + "'");
        if (!parts) return parts.error().wrap("reading " + file);
        const auto type = archive_entry_filetype(e);
        if (parts->empty() || (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)) continue;
        archive_entry_set_pathname(e, (dir + "/" + join(*parts, parts->size())).c_str());
        archive_entry_set_perm(e, type == AE_IFDIR ? 0700 : 0600);
        if (archive_write_header(out.get(), e) != ARCHIVE_OK)
            return make_error("unpack " + name, archive_message(out.get()), EINVAL).wrap("reading " + file);
        if (Status st = copy_data(in.get(), out.get(), "entry '" + name + "'"); !st) return st.error().wrap("reading " + file);
        archive_write_finish_entry(out.get());
    }
    if (rc != ARCHIVE_EOF) return make_error("read " + file, archive_message(in.get()), EIO);
    return {};
}

// ---- the manifests of both formats ---------------------------------------

struct LayerRef {
    std::string path;
    std::string digest;  // of the file as stored (OCI) or of its tar (docker save's diff_id)
};

struct ManifestRef {
    std::vector<std::string> names;
    std::string config_path, config_digest;
    std::vector<LayerRef> layers;
};

Result<std::string> checked_blob(const std::string& root, const std::string& digest, const std::string& what) {
    if (!valid_digest(digest)) return make_error(what, "digest '" + digest + "' is not sha256:<64 hex digits>", EINVAL);
    auto path = blob_path(root, "blobs/sha256/" + digest.substr(7));
    if (!path) return path.error();
    auto actual = sha256_file(*path);
    if (!actual) return actual.error();
    if (*actual != digest)
        return make_error(what + " " + digest, "digest mismatch: the blob's content hashes to " + *actual +
                                                   "; the archive is damaged or was altered", EBADMSG);
    return *path;
}

// An OCI image layout: index.json names manifests (or nested indexes) by
// digest; every blob is checked against the digest that names it.
Result<std::vector<ManifestRef>> oci_manifests(const std::string& root) {
    auto index = read_json(root + "/index.json", "OCI index");
    if (!index) return index.error();
    std::vector<ManifestRef> out;
    std::vector<std::pair<json, std::vector<std::string>>> todo;
    for (const auto& d : (*index).value("manifests", json::array())) todo.push_back({d, {}});
    while (!todo.empty()) {
        auto [desc, names] = todo.back();
        todo.pop_back();
        const std::string digest = desc.value("digest", "");
        const auto ann = desc.value("annotations", json::object());
        for (const char* key : {"io.containerd.image.name", "org.opencontainers.image.ref.name"})
            if (ann.contains(key) && ann[key].is_string() && names.empty()) names.push_back(ann[key].get<std::string>());
        auto path = checked_blob(root, digest, "manifest");
        if (!path) return path.error();
        auto m = read_json(*path, "manifest " + digest);
        if (!m) return m.error();
        if (m->contains("manifests")) {  // a nested index: take its linux/amd64 entry (or its only one)
            for (const auto& d : (*m)["manifests"]) {
                const auto platform = d.value("platform", json::object());
                if ((*m)["manifests"].size() == 1 || (platform.value("os", "") == "linux" && platform.value("architecture", "") == "amd64")) {
                    todo.push_back({d, names});
                    break;
                }
            }
            continue;
        }
        ManifestRef ref;
        ref.names = names;
        ref.config_digest = (*m).value("config", json::object()).value("digest", "");
        auto config = checked_blob(root, ref.config_digest, "config");
        if (!config) return config.error();
        ref.config_path = *config;
        for (const auto& l : (*m).value("layers", json::array())) {
            const std::string ld = l.value("digest", "");
            auto lp = checked_blob(root, ld, "layer");
            if (!lp) return lp.error();
            ref.layers.push_back({*lp, ld});
        }
        out.push_back(std::move(ref));
    }
    return out;
}

// `docker save`: manifest.json lists each image's config file, repository
// tags and layer tars; the config's rootfs.diff_ids are the layers' digests.
Result<std::vector<ManifestRef>> docker_manifests(const std::string& root) {
    auto manifest = read_json(root + "/manifest.json", "docker save manifest");
    if (!manifest) return manifest.error();
    if (!manifest->is_array()) return make_error("manifest.json", "is not a list of images", EINVAL);
    std::vector<ManifestRef> out;
    for (const auto& entry : *manifest) {
        ManifestRef ref;
        for (const auto& t : entry.value("RepoTags", json::array()))
            if (t.is_string()) ref.names.push_back(t.get<std::string>());
        const std::string config_rel = entry.value("Config", "");
        auto config = blob_path(root, config_rel);
        if (!config) return config.error();
        // The config is named by its digest: "<hex>.json" or "blobs/sha256/<hex>".
        std::string base = fs::path(config_rel).filename().string();
        if (base.size() > 5 && base.substr(base.size() - 5) == ".json") base.resize(base.size() - 5);
        ref.config_digest = "sha256:" + base;
        auto actual = sha256_file(*config);
        if (!actual) return actual.error();
        if (!valid_digest(ref.config_digest) || *actual != ref.config_digest)
            return make_error("config " + config_rel, "digest mismatch: its content hashes to " + *actual +
                                                          "; the archive is damaged or was altered", EBADMSG);
        ref.config_path = *config;
        auto cj = read_json(*config, "image config");
        if (!cj) return cj.error();
        const auto diff_ids = (*cj).value("rootfs", json::object()).value("diff_ids", json::array());
        const auto layers = entry.value("Layers", json::array());
        if (diff_ids.size() != layers.size())
            return make_error("config " + config_rel, "lists " + std::to_string(diff_ids.size()) + " layer digests for " +
                                                          std::to_string(layers.size()) + " layers", EBADMSG);
        for (std::size_t i = 0; i < layers.size(); ++i) {
            auto lp = blob_path(root, layers[i].get<std::string>());
            if (!lp) return lp.error();
            const std::string want = diff_ids[i].get<std::string>();
            auto got = sha256_file(*lp);
            if (!got) return got.error();
            if (*got != want)
                return make_error("layer " + layers[i].get<std::string>(), "digest mismatch: the config says " + want +
                                                                               ", the layer hashes to " + *got, EBADMSG);
            ref.layers.push_back({*lp, want});
        }
        out.push_back(std::move(ref));
    }
    return out;
}

ImageConfig parse_config(const json& cj) {
    ImageConfig c;
    const json conf = cj.value("config", json::object());
    auto strings = [&](const char* key) {
        std::vector<std::string> v;
        if (conf.contains(key) && conf[key].is_array())
            for (const auto& s : conf[key])
                if (s.is_string()) v.push_back(s.get<std::string>());
        return v;
    };
    c.env = strings("Env");
    c.entrypoint = strings("Entrypoint");
    c.cmd = strings("Cmd");
    if (conf.contains("WorkingDir") && conf["WorkingDir"].is_string()) c.working_dir = conf["WorkingDir"];
    if (conf.contains("User") && conf["User"].is_string()) c.user = conf["User"];
    return c;
}

// ---- applying a layer -----------------------------------------------------

struct LayerContext {
    std::string root;   // the tree being built
    std::string label;  // "layer 2 (sha256:...)" for errors
    bool strip_setuid = false;
    std::set<std::string> written;  // paths this layer put in the tree
};

Error refuse(const LayerContext& L, const std::string& entry, const std::string& why) {
    return make_error(L.label + ": entry '" + entry + "'", why, EPERM);
}

// A layer may not reach anything through a symbolic link: a link the image
// has (even an absolute one, legitimate inside the jail) would point into
// the host while unpacking.
Status no_link_on_the_way(const LayerContext& L, const std::vector<std::string>& parts, std::size_t n,
                          const std::string& entry) {
    std::string path = L.root;
    for (std::size_t i = 0; i < n; ++i) {
        path += "/" + parts[i];
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0) return {};
        if (S_ISLNK(st.st_mode))
            return refuse(L, entry, "goes through the symbolic link '" + join(parts, i + 1) +
                                        "'; a layer may not write through a link");
        if (!S_ISDIR(st.st_mode)) return {};
    }
    return {};
}

// A relative link target followed from the link's directory must stay in
// the root; an absolute one resolves inside the jail's root at run time.
bool link_escapes(const std::vector<std::string>& parts, const std::string& target) {
    if (target.empty() || target[0] == '/') return false;
    long depth = static_cast<long>(parts.size()) - 1;
    std::stringstream ss(target);
    for (std::string p; std::getline(ss, p, '/');) {
        if (p.empty() || p == ".") continue;
        depth += p == ".." ? -1 : 1;
        if (depth < 0) return true;
    }
    return false;
}

void remove_path(const std::string& path) {
    std::error_code ec;
    fs::remove_all(path, ec);
}

// An opaque directory hides what lower layers put in it; entries this
// layer already wrote there stay.
void clear_lower(const LayerContext& L, const std::string& dir_rel) {
    std::error_code ec;
    const std::string dir = dir_rel.empty() ? L.root : L.root + "/" + dir_rel;
    for (const auto& child : fs::directory_iterator(dir, ec)) {
        const std::string rel = (dir_rel.empty() ? "" : dir_rel + "/") + child.path().filename().string();
        auto it = L.written.lower_bound(rel);
        bool ours = it != L.written.end() && (*it == rel || it->rfind(rel + "/", 0) == 0);
        if (!ours) remove_path(child.path().string());
    }
}

// Whiteouts (.wh.NAME, .wh..wh..opq) act on the lower layers; true when
// the entry was one.
Result<bool> apply_whiteout(LayerContext& L, const std::vector<std::string>& parts) {
    const std::string& base = parts.back();
    if (base.rfind(".wh.", 0) != 0) return false;
    const std::string dir = join(parts, parts.size() - 1);
    if (base == ".wh..wh..opq") {
        clear_lower(L, dir);
        return true;
    }
    const std::string name = base.substr(4);
    if (name.empty() || name == "." || name == "..") return make_error(L.label, "bad whiteout '" + base + "'", EINVAL);
    remove_path(L.root + "/" + (dir.empty() ? "" : dir + "/") + name);
    return true;
}

Status check_entry(LayerContext& L, archive_entry* e, const std::string& raw, const std::vector<std::string>& parts) {
    const auto type = archive_entry_filetype(e);
    if (type == AE_IFCHR || type == AE_IFBLK) return refuse(L, raw, "is a device node; images may not carry devices");
    if (type == AE_IFSOCK) return refuse(L, raw, "is a socket");
    if ((archive_entry_mode(e) & (S_ISUID | S_ISGID)) && type != AE_IFDIR) {
        if (!L.strip_setuid)
            return refuse(L, raw, "has the setuid or setgid bit; import with --strip-setuid to drop such bits");
        archive_entry_set_perm(e, archive_entry_perm(e) & ~(S_ISUID | S_ISGID));
    }
    if (type == AE_IFDIR) archive_entry_set_perm(e, (archive_entry_perm(e) & 07777 & ~(S_ISUID | S_ISGID)) | S_IRWXU);
    if (const char* target = archive_entry_symlink(e); target && type == AE_IFLNK && link_escapes(parts, target))
        return refuse(L, raw, std::string("is a symbolic link to '") + target + "', outside the image's root");
    if (const char* hard = archive_entry_hardlink(e)) {
        auto hp = entry_parts(hard, L.label + ": hard link '" + raw + "' -> '" + hard + "'");
        if (!hp) return refuse(L, raw, std::string("is a hard link to '") + hard + "', outside the image's root");
        if (hp->empty()) return refuse(L, raw, "is a hard link to the root");
        if (Status st = no_link_on_the_way(L, *hp, hp->size() - 1, raw); !st) return st;
        struct stat st {};
        const std::string target = L.root + "/" + join(*hp, hp->size());
        if (::lstat(target.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
            return refuse(L, raw, std::string("is a hard link to '") + hard + "', which is not a file of the image");
        archive_entry_set_hardlink(e, target.c_str());
    }
    return {};
}

// A directory replaces a non-directory and the other way round.
void make_room(const std::string& path, bool is_dir) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return;
    if (S_ISDIR(st.st_mode) != is_dir) remove_path(path);
}

Status apply_layer(LayerContext& L, const std::string& file) {
    ReadArchive in(archive_read_new());
    archive_read_support_filter_all(in.get());  // gzip, zstd, or none
    archive_read_support_format_tar(in.get());
    if (archive_read_open_filename(in.get(), file.c_str(), 1 << 16) != ARCHIVE_OK)
        return make_error(L.label, "not a tar: " + archive_message(in.get()), EINVAL);
    WriteArchive out(archive_write_disk_new());
    // Owners are not restored: the tree belongs to the importing user.
    archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_UNLINK |
                                                  ARCHIVE_EXTRACT_SECURE_NODOTDOT);
    archive_entry* e = nullptr;
    int rc;
    while ((rc = archive_read_next_header(in.get(), &e)) == ARCHIVE_OK) {
        const std::string raw = archive_entry_pathname(e);
        auto parts = entry_parts(raw, L.label + ": entry '" + raw + "'");
        if (!parts) return parts.error();
        if (parts->empty()) continue;  // the root itself
        if (Status st = no_link_on_the_way(L, *parts, parts->size() - 1, raw); !st) return st;
        auto whiteout = apply_whiteout(L, *parts);
        if (!whiteout) return whiteout.error();
        if (*whiteout) continue;
        if (Status st = check_entry(L, e, raw, *parts); !st) return st;
        const std::string rel = join(*parts, parts->size());
        const std::string path = L.root + "/" + rel;
        make_room(path, archive_entry_filetype(e) == AE_IFDIR);
        archive_entry_set_pathname(e, path.c_str());
        if (archive_write_header(out.get(), e) != ARCHIVE_OK)
            return make_error(L.label + ": entry '" + raw + "'", archive_message(out.get()), EIO);
        if (Status st = copy_data(in.get(), out.get(), L.label + ": entry '" + raw + "'"); !st) return st;
        if (archive_write_finish_entry(out.get()) != ARCHIVE_OK)
            return make_error(L.label + ": entry '" + raw + "'", archive_message(out.get()), EIO);
        L.written.insert(rel);
    }
    if (rc != ARCHIVE_EOF) return make_error(L.label, "read: " + archive_message(in.get()), EIO);
    return {};
}

// Takes every write bit away and sums the size. nftw's callback has no
// closure: the sum goes through a thread-local.
thread_local std::uint64_t g_tree_bytes = 0;
int seal_entry(const char* path, const struct stat* st, int type, FTW*) {
    if (type != FTW_SL) ::chmod(path, st->st_mode & 07777 & ~(S_IWUSR | S_IWGRP | S_IWOTH));
    g_tree_bytes += static_cast<std::uint64_t>(st->st_size);
    return 0;
}

Result<std::uint64_t> seal_tree(const std::string& root) {
    g_tree_bytes = 0;
    // Depth-first (FTW_DEPTH): a directory loses its write bit after its entries.
    if (::nftw(root.c_str(), seal_entry, 64, FTW_PHYS | FTW_DEPTH) != 0) return sys_error("seal " + root);
    ::chmod(root.c_str(), 0555);
    return g_tree_bytes;
}

// ---- the index ------------------------------------------------------------

class StoreLock {
public:
    explicit StoreLock(const std::string& dir) : fd_(::open((dir + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
        if (fd_.get() >= 0) ::flock(fd_.get(), LOCK_EX);
    }

private:
    UniqueFd fd_;
};

Result<std::map<std::string, std::string>> load_index(const std::string& dir) {
    std::map<std::string, std::string> names;
    if (::access((dir + "/index.json").c_str(), F_OK) != 0) return names;
    auto j = read_json(dir + "/index.json", "image index");
    if (!j) return j.error();
    const json listed = (*j).value("names", json::object());
    for (const auto& [name, digest] : listed.items())
        if (digest.is_string()) names[name] = digest.get<std::string>();
    return names;
}

Status save_index(const std::string& dir, const std::map<std::string, std::string>& names) {
    json j = {{"names", names}};
    return write_file_atomic(dir + "/index.json", j.dump(2) + "\n");
}

Result<Image> load_image(const std::string& dir, const std::string& name, const std::string& digest) {
    const std::string base = dir + "/sha256/" + digest.substr(7);
    auto j = read_json(base + "/image.json", "image record");
    if (!j) return j.error().wrap("image " + name);
    Image img;
    img.name = name;
    img.digest = digest;
    img.size = (*j).value("size", std::uint64_t{0});
    img.imported = (*j).value("imported", std::int64_t{0});
    img.config = parse_config(*j);
    img.rootfs = base + "/rootfs";
    return img;
}

Status make_dirs(const std::string& dir) {
    for (const std::string& d : {dir, dir + "/sha256", dir + "/tmp"}) {
        std::error_code ec;
        fs::create_directories(d, ec);
        if (ec) return make_error("create " + d, ec.message() + "; check server.state_dir", ec.value());
    }
    return {};
}

// Unpacks one image's layers into staging/<hex> and moves it into the
// store; an image already there is not unpacked again.
Status unpack_image(const std::string& dir, const std::string& staging, const ManifestRef& m, const ImportOptions& options) {
    const std::string hex = m.config_digest.substr(7);
    if (::access((dir + "/sha256/" + hex + "/image.json").c_str(), F_OK) == 0) return {};
    auto cj = read_json(m.config_path, "image config");
    if (!cj) return cj.error();
    const std::string work = staging + "/" + hex;
    if (::mkdir(work.c_str(), 0755) != 0 || ::mkdir((work + "/rootfs").c_str(), 0755) != 0)
        return sys_error("mkdir " + work);
    LayerContext L;
    L.root = work + "/rootfs";
    L.strip_setuid = options.strip_setuid;
    for (std::size_t i = 0; i < m.layers.size(); ++i) {
        L.label = "layer " + std::to_string(i + 1) + " (" + m.layers[i].digest + ")";
        L.written.clear();
        if (Status st = apply_layer(L, m.layers[i].path); !st) return st;
    }
    auto size = seal_tree(L.root);
    if (!size) return size.error();
    json record = {{"digest", m.config_digest}, {"size", *size}, {"imported", static_cast<std::int64_t>(std::time(nullptr))},
                   {"config", (*cj).value("config", json::object())}};
    if (Status st = write_file_atomic(work + "/image.json", record.dump(2) + "\n"); !st) return st;
    // Sealed after the move: an unprivileged owner may move a directory to
    // another parent only while it can write it (its ".." changes).
    const std::string final_dir = dir + "/sha256/" + hex;
    if (::rename(work.c_str(), final_dir.c_str()) != 0) return sys_error("rename " + work, "into the store");
    ::chmod(final_dir.c_str(), 0555);
    return {};
}

}  // namespace

Store::Store(std::string dir) : dir_(std::move(dir)) {}

Result<std::vector<Image>> Store::import(const std::string& archive_file, const ImportOptions& options) {
    // A manifest or config of the wrong shape throws from nlohmann::json:
    // it becomes an error like any other, and the staging directory goes.
    try {
        return import_checked(archive_file, options);
    } catch (const json::exception& e) {
        return make_error("import " + archive_file, std::string("a manifest or config has an unexpected shape: ") + e.what(), EINVAL);
    }
}

Result<std::vector<Image>> Store::import_checked(const std::string& archive_file, const ImportOptions& options) {
    if (Status st = make_dirs(dir_); !st) return st.error();
    StoreLock lock(dir_);
    char tmpl[4096];
    std::snprintf(tmpl, sizeof tmpl, "%s/tmp/import-XXXXXX", dir_.c_str());
    if (!::mkdtemp(tmpl)) return sys_error("mkdtemp " + std::string(tmpl));
    StagingDir staging(tmpl);
    const std::string outer = staging.path() + "/archive";
    if (::mkdir(outer.c_str(), 0700) != 0) return sys_error("mkdir " + outer);
    if (Status st = unpack_outer(archive_file, outer); !st) return st.error();

    const bool is_oci = ::access((outer + "/oci-layout").c_str(), F_OK) == 0 && ::access((outer + "/index.json").c_str(), F_OK) == 0;
    const bool is_docker = ::access((outer + "/manifest.json").c_str(), F_OK) == 0;
    if (!is_oci && !is_docker)
        return make_error("import " + archive_file, "neither a `docker save` archive (manifest.json) nor an OCI layout (oci-layout, index.json)", EINVAL);
    // Newer `docker save` writes both; its manifest.json carries the tags.
    auto manifests = is_docker ? docker_manifests(outer) : oci_manifests(outer);
    if (!manifests) return manifests.error().wrap("import " + archive_file);
    if (manifests->empty()) return make_error("import " + archive_file, "the archive holds no image", EINVAL);
    if (!options.name.empty() && manifests->size() > 1)
        return make_error("--name", "the archive holds " + std::to_string(manifests->size()) + " images; --name names one", EINVAL);

    auto index = load_index(dir_);
    if (!index) return index.error();
    for (const auto& m : *manifests) {
        if (options.name.empty() && m.names.empty())
            return make_error("import " + archive_file, "the image " + m.config_digest + " carries no name; give one with --name", EINVAL);
        if (Status st = unpack_image(dir_, staging.path(), m, options); !st) return st.error().wrap("import " + archive_file);
    }
    std::vector<Image> out;
    for (const auto& m : *manifests) {
        for (const auto& name : options.name.empty() ? m.names : std::vector<std::string>{options.name}) {
            (*index)[name] = m.config_digest;
            auto img = load_image(dir_, name, m.config_digest);
            if (!img) return img.error();
            out.push_back(std::move(*img));
        }
    }
    if (Status st = save_index(dir_, *index); !st) return st.error();
    return out;
}

Result<std::vector<Image>> Store::list() const {
    auto index = load_index(dir_);
    if (!index) return index.error();
    std::vector<Image> out;
    for (const auto& [name, digest] : *index) {
        auto img = load_image(dir_, name, digest);
        if (!img) return img.error();
        out.push_back(std::move(*img));
    }
    return out;
}

Result<Image> Store::find(const std::string& name) const {
    auto index = load_index(dir_);
    if (!index) return index.error();
    auto it = index->find(name);
    if (it == index->end())
        return make_error("image " + name, "is not in the store " + dir_ + "; import it with `kiln image import FILE`", ENOENT);
    return load_image(dir_, name, it->second);
}

Status Store::remove(const std::string& name) {
    if (::access(dir_.c_str(), F_OK) != 0) return make_error("image " + name, "is not in the store (it is empty)", ENOENT);
    StoreLock lock(dir_);
    auto index = load_index(dir_);
    if (!index) return index.error();
    auto it = index->find(name);
    if (it == index->end()) return make_error("image " + name, "is not in the store; see `kiln image list`", ENOENT);
    const std::string digest = it->second;
    index->erase(it);
    if (Status st = save_index(dir_, *index); !st) return st;
    for (const auto& [other, d] : *index)
        if (d == digest) return {};
    // Out of the store's namespace first, then deleted: a crash halfway
    // leaves a directory under tmp/, never a half tree under sha256/.
    const std::string tree = dir_ + "/sha256/" + digest.substr(7);
    const std::string doomed = dir_ + "/tmp/remove-" + digest.substr(7, 12) + "-" + std::to_string(::getpid());
    ::chmod(tree.c_str(), 0755);
    if (::rename(tree.c_str(), doomed.c_str()) != 0) return sys_error("rename " + tree);
    StagingDir gone(doomed);
    return {};
}

Result<Image> resolve_allowed(const Store& store, const std::string& name, const std::vector<std::string>& allowed) {
    std::string pinned;
    for (const auto& a : allowed) {
        auto at = a.rfind('@');
        if (at != std::string::npos && a.substr(0, at) == name) pinned = a.substr(at + 1);
    }
    if (pinned.empty())
        return make_error("image " + name, "is not in sandbox.allowed_images; add it as " + name +
                                               "@sha256:<digest> (the digest `kiln image list` shows)", EPERM);
    auto img = store.find(name);
    if (!img) return img.error();
    if (img->digest != pinned)
        return make_error("image " + name, "has digest " + img->digest + " in the store but sandbox.allowed_images pins " +
                                               pinned + "; re-import the pinned image or update the setting", EPERM);
    return img;
}

EnvChoice choose_env(const std::vector<std::string>& image_env) {
    EnvChoice c;
    for (const auto& kv : image_env) {
        const auto eq = kv.find('=');
        const std::string key = kv.substr(0, eq);
        if (eq == std::string::npos || eq == 0) c.dropped.push_back(kv + ": not KEY=VALUE");
        else if (key.rfind("LD_", 0) == 0) c.dropped.push_back(key + ": the dynamic loader's controls load code the validator never saw");
        else if (key == "BASH_ENV" || key == "ENV" || key == "PYTHONSTARTUP" || key == "NODE_OPTIONS" || key == "PERL5OPT")
            c.dropped.push_back(key + ": runs code before the validated program");
        else if (key == "HOME") c.dropped.push_back(key + ": the jail's HOME is its writable /tmp");
        else c.kept.push_back(kv);
    }
    return c;
}

void apply(SandboxSpec& spec, const Image& image) {
    spec.rootfs = image.rootfs;
    std::vector<std::string> env = choose_env(image.config.env).kept;
    env.insert(env.end(), spec.env.begin(), spec.env.end());
    spec.env = std::move(env);
}

std::string store_dir(const std::string& state_dir) { return state_dir + "/images"; }

Status apply_configured(SandboxSpec& spec, const Config& config) {
    const SandboxConfig& sb = config.sandbox;
    if (sb.image.empty()) return {};
    if (!sb.rootfs.empty())
        return make_error("sandbox.image", "and sandbox.rootfs both name the jail's root; set only one", EINVAL);
    auto img = resolve_allowed(Store(store_dir(config.server.state_dir)), sb.image, sb.allowed_images);
    if (!img) return img.error();
    apply(spec, *img);
    return {};
}

std::string configured_root(const Config& config) {
    if (config.sandbox.image.empty()) return config.sandbox.rootfs;
    auto img = Store(store_dir(config.server.state_dir)).find(config.sandbox.image);
    return img ? img->rootfs : config.sandbox.rootfs;
}

}  // namespace kiln::sandbox::image
