// The image store: container images imported from an archive and unpacked
// into a content-addressed directory that the native jail uses as its
// read-only root (SandboxSpec::rootfs), with no daemon and no registry.
//
// import() reads what `docker save` writes (manifest.json, a config and a
// tar per layer) or an OCI image layout tarball (oci-layout, index.json,
// blobs/sha256/..., from podman, skopeo, buildah), checks the digest of the
// manifest, the config and every layer, and applies the layers in order
// with their whiteouts and opaque directories. A layer entry that is a
// device node, carries a setuid or setgid bit, has an absolute or escaping
// path, writes through a symbolic link, or links outside the root is
// refused, naming the layer and the entry. The import is atomic: the tree
// is unpacked in a staging directory and renamed into place last, so a
// refused or failed import leaves nothing in the store.
//
// Layout under dir: sha256/<hex>/rootfs (the tree), sha256/<hex>/image.json
// (digest, size, time, the image's config), index.json (name -> digest),
// tmp/ (staging). <hex> is the digest of the image's config, the image id
// both formats share. The tree's files are owned by the importing user and
// lose every write bit, so a jail's user (any other host uid) can read what
// the image makes world-readable and nobody but root can change it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/result.hpp"
#include "sandbox/runtime.hpp"

namespace kiln::sandbox::image {

// What the image's config says about running it.
struct ImageConfig {
    std::vector<std::string> env;  // "K=V"
    std::vector<std::string> entrypoint, cmd;
    std::string working_dir, user;
};

struct Image {
    std::string name;
    std::string digest;  // "sha256:<hex>" of the image's config (the image id)
    std::uint64_t size = 0;  // bytes of the unpacked tree
    std::int64_t imported = 0;  // unix time
    ImageConfig config;
    std::string rootfs;  // the unpacked tree
};

struct ImportOptions {
    std::string name;  // replaces the names the archive carries
    // Import a layer's setuid/setgid files with the bits removed instead of
    // refusing the layer (a stock Debian image has su, mount, passwd).
    bool strip_setuid = false;
};

class Store {
public:
    explicit Store(std::string dir);
    const std::string& dir() const { return dir_; }
    // One Image per name recorded. Not thread-safe within a process; a lock
    // file serialises importing and removing processes.
    Result<std::vector<Image>> import(const std::string& archive, const ImportOptions& options);
    Result<std::vector<Image>> list() const;
    Result<Image> find(const std::string& name) const;
    // Forgets the name; the tree goes with the last name that uses it. A
    // jail running on it keeps its mount until it ends.
    Status remove(const std::string& name);

private:
    Result<std::vector<Image>> import_checked(const std::string& archive, const ImportOptions& options);
    std::string dir_;
};

// C005 for images: the image named may run only if sandbox.allowed_images
// lists it as NAME@sha256:<hex> with the digest the store holds; anything
// else is refused before a jail exists, naming the setting.
Result<Image> resolve_allowed(const Store& store, const std::string& name, const std::vector<std::string>& allowed);

// The image's Env entries the jail may get, and the ones dropped with why.
struct EnvChoice {
    std::vector<std::string> kept;
    std::vector<std::string> dropped;  // "NAME: reason"
};
EnvChoice choose_env(const std::vector<std::string>& image_env);

// Makes the image the spec's root and puts its allowed Env under the
// spec's own entries (which win).
void apply(SandboxSpec& spec, const Image& image);

// The store of a state directory: <state_dir>/images.
std::string store_dir(const std::string& state_dir);

// sandbox.image applied to a spec (nothing when unset): resolved against
// sandbox.allowed_images in the store of server.state_dir. kiln run and
// the run tools call it before any jail exists.
Status apply_configured(SandboxSpec& spec, const Config& config);
// The root a jail of this configuration gets: the configured image's tree,
// else sandbox.rootfs (empty: the host's binds).
std::string configured_root(const Config& config);

}  // namespace kiln::sandbox::image
