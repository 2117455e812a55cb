// kiln image import|list|remove: the store of images the native jail can
// use as its root (sandbox/image_store.hpp), under <state_dir>/images.
#include <cstdio>
#include <ctime>
#include <iostream>

#include "cli/cli.hpp"
#include "sandbox/image_store.hpp"

namespace kiln::cli {
namespace {

namespace image = sandbox::image;

std::string image_dir(const Context& ctx) { return ctx.config.server.state_dir + "/images"; }

std::string format_size(std::uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
    return buf;
}

std::string format_time(std::int64_t t) {
    char buf[32];
    std::time_t tt = static_cast<std::time_t>(t);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));
    return buf;
}

struct Flags {
    std::string file, name, remove_name;
    bool strip_setuid = false;
};

int do_import(Context& ctx, const Flags& f) {
    image::Store store(image_dir(ctx));
    auto imported = store.import(f.file, {f.name, f.strip_setuid});
    if (!imported) {
        std::cerr << "kiln image import: " << imported.error().what() << "\n";
        return kExitFailure;
    }
    for (const auto& img : *imported) {
        std::cout << "imported " << img.name << " " << img.digest << " (" << format_size(img.size) << ")\n";
        std::cout << "  allow it with: sandbox.allowed_images: [" << img.name << "@" << img.digest << "]\n";
        for (const auto& d : image::choose_env(img.config.env).dropped) std::cout << "  env dropped in jails: " << d << "\n";
    }
    return kExitOk;
}

int do_list(Context& ctx) {
    image::Store store(image_dir(ctx));
    auto images = store.list();
    if (!images) {
        std::cerr << "kiln image list: " << images.error().what() << "\n";
        return kExitFailure;
    }
    if (images->empty()) std::cout << "No images in " << store.dir() << " (kiln image import FILE)\n";
    for (const auto& img : *images)
        std::cout << img.name << "  " << img.digest << "  " << format_size(img.size) << "  imported "
                  << format_time(img.imported) << "\n";
    return kExitOk;
}

int do_remove(Context& ctx, const Flags& f) {
    image::Store store(image_dir(ctx));
    if (Status st = store.remove(f.remove_name); !st) {
        std::cerr << "kiln image remove: " << st.error().what() << "\n";
        return kExitFailure;
    }
    std::cout << "removed " << f.remove_name << "\n";
    return kExitOk;
}

}  // namespace

Command register_image(CLI::App& app) {
    auto* sub = app.add_subcommand(
        "image", "Manage the images a jail can use as its root (no daemon, no registry): import an archive, list, remove");
    sub->require_subcommand(1);
    auto f = std::make_shared<Flags>();
    auto* import = sub->add_subcommand(
        "import",
        "Import FILE, as `docker save` or `podman save --format oci-archive` (skopeo, buildah) write it: every digest is "
        "checked and the layers are unpacked into <state_dir>/images. Then pin it in sandbox.allowed_images and run with "
        "sandbox.image or `kiln run --image NAME`");
    import->add_option("file", f->file, "image archive (tar, as docker save or an OCI layout tarball)")->required();
    import->add_option("--name", f->name, "record the image under this name instead of the archive's tags");
    import->add_flag("--strip-setuid", f->strip_setuid,
                     "drop setuid/setgid bits instead of refusing the layer (stock distribution images have su, mount...)");
    auto* list = sub->add_subcommand("list", "List imported images: name, digest (for sandbox.allowed_images), size, when");
    auto* rm = sub->add_subcommand("remove", "Forget an image name; its files go with the last name that uses them");
    rm->add_option("name", f->remove_name, "image name as kiln image list shows it")->required();
    return {sub, [=](Context& ctx) {
                if (import->parsed()) return do_import(ctx, *f);
                if (list->parsed()) return do_list(ctx);
                return do_remove(ctx, *f);
            }};
}

}  // namespace kiln::cli
