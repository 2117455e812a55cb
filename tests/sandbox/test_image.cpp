// kiln image import|list|remove and kiln run --image end to end: real
// archives in both formats packed from tests/images/build-rootfs.sh's
// Debian, hand-made hostile layers, and the allowlist (C005).
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tests/sandbox/harness.hpp"

using namespace kiln::sandbox::test;
namespace fs = std::filesystem;

namespace {

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// tests/images/build-rootfs.sh's tree; empty when it cannot be built here
// (no debootstrap, not root and not cached).
const std::string& debian_rootfs() {
    static const std::string path = [] {
        auto o = sh(std::string(KILN_SOURCE_DIR) + "/tests/images/build-rootfs.sh 2>/dev/null");
        return o.code == 0 ? trim(o.out) : std::string();
    }();
    return path;
}

// A state directory of its own, so the store starts empty.
struct Store {
    TempDir dir;
    std::string kiln(const std::string& args, const std::string& env = {}) const {
        return "KILN_SERVER_STATE_DIR=" + dir.path() + " " + env + " " + kiln_path() + " " + args;
    }
    std::string images() const { return dir.path() + "/images"; }
    // Trees in the store and leftovers of imports.
    std::size_t trees() const { return count(images() + "/sha256"); }
    std::size_t staging() const { return count(images() + "/tmp"); }
    static std::size_t count(const std::string& d) {
        std::error_code ec;
        std::size_t n = 0;
        for (auto it = fs::directory_iterator(d, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) ++n;
        return n;
    }
};

std::string write_layer(const TempDir& dir, const std::string& name, const std::string& json) {
    const std::string path = dir.path() + "/" + name + ".json";
    std::ofstream(path) << json;
    return path;
}

// Packs an archive with make_image.py; returns the config digest it printed.
std::string pack(const std::string& format, const std::string& name, const std::string& out,
                 const std::vector<std::string>& layers, const std::string& extra = {}) {
    std::string cmd = std::string("python3 ") + KILN_SOURCE_DIR + "/tests/images/make_image.py --format " + format +
                      " --name " + name + " --out " + out + " " + extra;
    for (const auto& l : layers) cmd += " " + l;
    auto o = sh(cmd);
    REQUIRE_MESSAGE(o.code == 0, o.out);
    return trim(o.out);
}

// The top layer of the Debian test image: a whiteout, an opaque directory
// and a marker, each visible from inside the jail.
constexpr const char* kTopLayer = R"([
  {"path": "etc/os-release", "type": "file", "data": "PRETTY_NAME=\"Kiln test image\"\n"},
  {"path": "etc/.wh.debian_version", "type": "file"},
  {"path": "usr/share/doc", "type": "dir"},
  {"path": "usr/share/doc/.wh..wh..opq", "type": "file"},
  {"path": "usr/share/doc/only-this", "type": "file", "data": "x"},
  {"path": "usr/share/kiln-marker", "type": "file", "data": "from the image\n"},
  {"path": "app", "type": "dir"},
  {"path": "app/hello.py", "type": "file", "data": "print('hello from /app')\n"}
])";

constexpr const char* kCheckInJail =
    "import os, sys; print(open('/etc/os-release').read().strip()); "
    "print('debian_version', os.path.exists('/etc/debian_version')); "
    "print('doc', sorted(os.listdir('/usr/share/doc'))); "
    "print('marker', open('/usr/share/kiln-marker').read().strip()); "
    "exec(open('/app/hello.py').read()); "
    "print('su-setuid', bool(os.stat('/usr/bin/su').st_mode & 0o4000)); "
    "print('env', os.environ.get('KILN_IMAGE_VAR'), os.environ.get('LD_PRELOAD'), os.environ['HOME'])";

}  // namespace

KILN_TEST_CASE_IF("image: docker save and OCI archives of Debian import, list, run python3 on the image, remove",
                  is_root(), "packing the Debian tree reads root-only files (/etc/shadow, /root)") {
    KILN_REQUIRE_HOST(!debian_rootfs().empty(), "no test rootfs (tests/images/build-rootfs.sh needs root and debootstrap)");
    TempDir work;
    Store store;
    const std::string top = write_layer(work, "top", kTopLayer);
    const std::string env = "--env KILN_IMAGE_VAR=kept --env LD_PRELOAD=/x.so --env HOME=/root";
    const std::string digest = pack("docker", "kiln-test:docker", work.path() + "/d.tar", {debian_rootfs(), top}, env);
    CHECK(pack("oci", "kiln-test:oci", work.path() + "/o.tar", {debian_rootfs(), top}, env) == digest);

    // A stock Debian has setuid programs: refused by default, stripped on request.
    auto refused = sh(store.kiln("image import " + work.path() + "/d.tar"));
    CHECK(refused.code != 0);
    CHECK(refused.out.find("has the setuid or setgid bit") != std::string::npos);
    CHECK(refused.out.find("--strip-setuid") != std::string::npos);
    CHECK(store.trees() == 0);
    CHECK(store.staging() == 0);

    auto imported = sh(store.kiln("image import --strip-setuid " + work.path() + "/d.tar"));
    REQUIRE_MESSAGE(imported.code == 0, imported.out);
    CHECK(imported.out.find("LD_PRELOAD: the dynamic loader") != std::string::npos);
    imported = sh(store.kiln("image import --strip-setuid " + work.path() + "/o.tar"));
    REQUIRE_MESSAGE(imported.code == 0, imported.out);
    CHECK(store.trees() == 1);  // one config digest, one tree, two names
    CHECK(store.staging() == 0);
    auto listed = sh(store.kiln("image list"));
    CHECK(listed.out.find("kiln-test:docker  " + digest) != std::string::npos);
    CHECK(listed.out.find("kiln-test:oci  " + digest) != std::string::npos);

    // Nobody but root can write the tree; the jail's users can read it.
    const std::string tree = store.images() + "/sha256/" + digest.substr(7) + "/rootfs";
    struct stat st {};
    REQUIRE(::stat((tree + "/usr/bin/python3.11").c_str(), &st) == 0);
    CHECK((st.st_mode & 0222) == 0);
    CHECK((st.st_mode & 0005) == 0005);

    const std::string allow = "KILN_SANDBOX_ALLOWED_IMAGES=kiln-test:oci@" + digest;
    for (const char* name : {"kiln-test:oci"}) {
        LeakCheck leaks;
        auto run = sh(store.kiln(std::string("run --validation off --image ") + name + " -- python3 -c \"" + kCheckInJail + "\"", allow));
        REQUIRE_MESSAGE(run.code == 0, run.out);
        CHECK(run.out.find("PRETTY_NAME=\"Kiln test image\"") != std::string::npos);
        CHECK(run.out.find("debian_version False") != std::string::npos);     // the whiteout hides the lower file
        CHECK(run.out.find("doc ['only-this']") != std::string::npos);        // the opaque dir hides the lower entries
        CHECK(run.out.find("marker from the image") != std::string::npos);
        CHECK(run.out.find("hello from /app") != std::string::npos);  // any top-level dir of the image, not only /usr and /etc
        CHECK(run.out.find("su-setuid False") != std::string::npos);
        CHECK(run.out.find("env kept None /tmp") != std::string::npos);  // LD_* and HOME dropped, the rest kept
        leaks.verify();
    }
    // The host's root has none of it.
    CHECK(!fs::exists("/usr/share/kiln-marker"));

    // kiln serve's run tools on sandbox.image: on the list, the image is the
    // root; off it, the call fails naming the setting.
    auto serve_call = [&](const std::string& extra_argument, const std::string& env) {
        const std::string call =
            "printf '%s\\n' '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}' "
            "'{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}' "
            "'{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"run_command\",\"arguments\":{\"command\":\"cat /usr/share/kiln-marker\"" +
            extra_argument + "}}}' | (cat; sleep 3) | ";
        return sh(call + store.kiln("serve", env));
    };
    auto served = serve_call("", allow + " KILN_SANDBOX_IMAGE=kiln-test:oci");
    CHECK_MESSAGE(served.out.find("from the image") != std::string::npos, served.out);
    auto refused_call = serve_call("", "KILN_SANDBOX_IMAGE=kiln-test:docker " + allow);
    CHECK_MESSAGE(refused_call.out.find("is not in sandbox.allowed_images") != std::string::npos, refused_call.out);
    // A call picks its image only when sandbox.call_images allows, and only from the list.
    const std::string pick = ",\"image\":\"kiln-test:oci\"";
    auto picked = serve_call(pick, allow + " KILN_SANDBOX_CALL_IMAGES=true");
    CHECK_MESSAGE(picked.out.find("from the image") != std::string::npos, picked.out);
    auto not_allowed = serve_call(pick, allow);
    CHECK(not_allowed.out.find("from the image") == std::string::npos);
    CHECK_MESSAGE(not_allowed.out.find("'image' is not a known field") != std::string::npos, not_allowed.out);
    auto off_list = serve_call(",\"image\":\"kiln-test:docker\"", allow + " KILN_SANDBOX_CALL_IMAGES=true");
    CHECK_MESSAGE(off_list.out.find("kiln-test:docker: is not in sandbox.allowed_images") != std::string::npos, off_list.out);

    // Removing one name keeps the tree for the other; the last takes it.
    CHECK(sh(store.kiln("image remove kiln-test:docker")).code == 0);
    CHECK(store.trees() == 1);
    CHECK(sh(store.kiln("image remove kiln-test:oci")).code == 0);
    CHECK(store.trees() == 0);
    CHECK(store.staging() == 0);
    auto gone = sh(store.kiln("image remove kiln-test:oci"));
    CHECK(gone.code != 0);
    CHECK(gone.out.find("not in the store") != std::string::npos);
}

TEST_CASE("image: C005, an image off sandbox.allowed_images or pinned to another digest is refused before any jail") {
    TempDir work;
    Store store;
    const std::string layer = write_layer(work, "l", R"([{"path": "bin", "type": "dir"}])");
    const std::string digest = pack("oci", "tiny:1", work.path() + "/t.tar", {layer});
    auto imported = sh(store.kiln("image import " + work.path() + "/t.tar"));
    REQUIRE_MESSAGE(imported.code == 0, imported.out);
    LeakCheck leaks;
    auto off = sh(store.kiln("run --validation off --image tiny:1 -- /bin/true"));
    CHECK(off.code == 64);
    CHECK(off.out.find("tiny:1: is not in sandbox.allowed_images") != std::string::npos);
    const std::string other = "sha256:" + std::string(64, 'a');
    auto pinned = sh(store.kiln("run --validation off --image tiny:1 -- /bin/true", "KILN_SANDBOX_ALLOWED_IMAGES=tiny:1@" + other));
    CHECK(pinned.code == 64);
    CHECK(pinned.out.find("sandbox.allowed_images pins " + other) != std::string::npos);
    auto bad = sh(store.kiln("run --validation off --image tiny:1 -- /bin/true", "KILN_SANDBOX_ALLOWED_IMAGES=tiny:1"));
    CHECK(bad.code != 0);
    CHECK(bad.out.find("sandbox.allowed_images") != std::string::npos);
    CHECK(bad.out.find("NAME@sha256:<64 hex digits>") != std::string::npos);
    leaks.verify();
    (void)digest;
    // Removal gives the sealed tree's write bits back first: an unprivileged
    // owner could not delete it otherwise (and the TempDir would stay).
    CHECK(sh(store.kiln("image remove tiny:1")).code == 0);
    CHECK(store.trees() == 0);
}

TEST_CASE("image: hostile layers are refused naming the layer and the entry, and nothing is left in the store") {
    TempDir work;
    const std::string escape_dir = work.path() + "/outside";
    fs::create_directories(escape_dir);
    struct Hostile {
        const char* what;
        std::string layer;
        const char* expect;
    };
    const std::vector<Hostile> cases = {
        {"dotdot", R"([{"path": "../../escaped", "type": "file", "data": "x"}])", "entry '../../escaped': has a '..' part"},
        {"absolute", R"([{"path": "/etc/escaped", "type": "file", "data": "x"}])", "entry '/etc/escaped': is an absolute path"},
        {"symlink-through",
         R"([{"path": "esc", "type": "symlink", "target": ")" + escape_dir + R"("}, {"path": "esc/pwned", "type": "file", "data": "x"}])",
         "entry 'esc/pwned': goes through the symbolic link 'esc'"},
        {"symlink-relative", R"([{"path": "a/up", "type": "symlink", "target": "../../../etc"}])",
         "entry 'a/up': is a symbolic link to '../../../etc', outside the image's root"},
        {"hardlink", R"([{"path": "h", "type": "hardlink", "target": "../../etc/shadow"}])",
         "entry 'h': is a hard link to '../../etc/shadow', outside the image's root"},
        {"device", R"([{"path": "dev/sda", "type": "chardev", "major": 8, "minor": 0}])", "entry 'dev/sda': is a device node"},
        {"setuid", R"([{"path": "bin/su", "type": "file", "mode": 2541, "data": "x"}])", "entry 'bin/su': has the setuid or setgid bit"},
        {"setgid", R"([{"path": "bin/sg", "type": "file", "mode": 1517, "data": "x"}])", "entry 'bin/sg': has the setuid or setgid bit"},
    };
    for (const auto& format : {"docker", "oci"}) {
        for (const auto& c : cases) {
            CAPTURE(format);
            CAPTURE(c.what);
            Store store;
            const std::string base = write_layer(work, "base", R"([{"path": "etc", "type": "dir"}, {"path": "etc/ok", "type": "file"}])");
            const std::string bad = write_layer(work, c.what, c.layer);
            const std::string archive = work.path() + "/" + c.what + ".tar";
            pack(format, "hostile:1", archive, {base, bad});
            auto o = sh(store.kiln("image import " + archive));
            CHECK(o.code != 0);
            CHECK_MESSAGE(o.out.find("layer 2 (sha256:") != std::string::npos, o.out);
            CHECK_MESSAGE(o.out.find(c.expect) != std::string::npos, o.out);
            CHECK(store.trees() == 0);
            CHECK(store.staging() == 0);
            CHECK(sh(store.kiln("image list")).out.find("hostile") == std::string::npos);
            CHECK(Store::count(escape_dir) == 0);
        }
    }
}

TEST_CASE("image: a layer whose digest does not match is refused, in both formats") {
    TempDir work;
    const std::string layer = write_layer(work, "l", R"([{"path": "etc/x", "type": "file", "data": "hello"}])");
    for (const auto& format : {"docker", "oci"}) {
        CAPTURE(format);
        Store store;
        const std::string archive = work.path() + "/" + format + ".tar";
        pack(format, "bad:1", archive, {layer}, "--corrupt-layer 1");
        auto o = sh(store.kiln("image import " + archive));
        CHECK(o.code != 0);
        CHECK_MESSAGE(o.out.find("digest mismatch") != std::string::npos, o.out);
        CHECK(store.trees() == 0);
        CHECK(store.staging() == 0);
    }
}
