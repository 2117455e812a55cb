#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/text.hpp"
#include "tools/rich_content.hpp"
#include "scratch_workspace.hpp"

using namespace kiln;
using namespace kiln::tools;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A PNG's signature and IHDR chunk (what png_size reads), then filler.
std::string fake_png(std::uint32_t w, std::uint32_t h, std::size_t total = 64) {
    std::string b = "\x89PNG\r\n\x1a\n";
    auto u32 = [&b](std::uint32_t v) {
        for (int shift = 24; shift >= 0; shift -= 8) b += static_cast<char>((v >> shift) & 0xff);
    };
    u32(13);
    b += "IHDR";
    u32(w);
    u32(h);
    b.resize(std::max(total, b.size()), '\0');
    return b;
}

rich::Figure figure(std::string name, std::string bytes) {
    auto size = bytes.size();
    return {std::move(name), std::move(bytes), size};
}

bool any_note_has(const rich::Content& c, const std::string& text) {
    for (const auto& n : c.notes)
        if (n.find(text) != std::string::npos) return true;
    return false;
}

using test::Scratch;

}  // namespace

TEST_CASE("png_size reads the IHDR and refuses what is not a PNG") {
    auto size = rich::png_size(fake_png(640, 480));
    REQUIRE(size);
    CHECK(size->width == 640);
    CHECK(size->height == 480);
    CHECK_FALSE(rich::png_size("GIF89a and more bytes than twenty-four"));
    CHECK_FALSE(rich::png_size(fake_png(640, 480).substr(0, 20)));
    CHECK_FALSE(rich::png_size(fake_png(0, 480)));
}

TEST_CASE("image_item is an MCP image content item with the PNG in base64") {
    std::string png = fake_png(2, 3);
    json item = rich::image_item(png);
    CHECK(item["type"] == "image");
    CHECK(item["mimeType"] == "image/png");
    CHECK(*base64_decode(item["data"].get<std::string>()) == png);
}

TEST_CASE("images are bounded in count and size, and a note says what was dropped") {
    rich::Limits limits;
    limits.max_images = 2;
    limits.max_image_bytes = 1000;
    rich::Content out;
    std::vector<rich::Figure> figs = {figure("figure-0001.png", fake_png(10, 10)),
                                      figure("big.png", fake_png(10, 10, 5000)),
                                      figure("fake.png", "not a png at all, really not"),
                                      figure("figure-0002.png", fake_png(20, 20)),
                                      figure("figure-0003.png", fake_png(30, 30)),
                                      figure("figure-0004.png", fake_png(40, 40))};
    rich::add_images(out, figs, limits);
    REQUIRE(out.items.size() == 2);
    CHECK(rich::png_size(*base64_decode(out.items[1]["data"].get<std::string>()))->width == 20);
    CHECK(any_note_has(out, "1 figure over 1000B per image (workspace.max_image_size) dropped: big.png (5000B)"));
    CHECK(any_note_has(out, "1 figure that is not a PNG image dropped: fake.png"));
    CHECK(any_note_has(out, "2 more figures dropped: at most 2 images per result (workspace.max_images)"));
    CHECK(out.notes.size() == 3);

    // However many files a program leaves, one note per reason.
    std::vector<rich::Figure> junk;
    for (int i = 0; i < 100; ++i) junk.push_back(figure("junk-" + std::to_string(i) + ".png", "junk"));
    rich::Content flooded;
    rich::add_images(flooded, junk, limits);
    CHECK(flooded.items.empty());
    REQUIRE(flooded.notes.size() == 1);
    CHECK(flooded.notes[0] == "100 figures that are not PNG images dropped: junk-0.png, junk-1.png, junk-2.png and 97 more");

    rich::Content fits;
    rich::add_images(fits, {figs[0]}, limits);
    CHECK(fits.items.size() == 1);
    CHECK(fits.notes.empty());
}

TEST_CASE("the snapshot diff links created and changed files, not unchanged, deleted or hidden ones") {
    Scratch s;
    rich::Limits limits;
    s.write("same.txt", "same");
    s.write("edit.csv", "a,b\n");
    s.write("gone.txt", "bye");
    s.write("sub/replaced.txt", "old");
    auto before = rich::snapshot(s.fd.get(), limits);
    REQUIRE(before);
    CHECK(before->files.size() == 4);

    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a later mtime even on a coarse clock
    s.write("edit.csv", "a,b\n1,2\n");
    s.write("new/out.png", fake_png(1, 1));
    fs::remove(s.ws / "gone.txt");
    s.write("sub/tmp", "new");  // same size as before, another inode: a replacement by rename
    fs::rename(s.ws / "sub/tmp", s.ws / "sub/replaced.txt");
    s.write(".kiln/figures-1/figure-0001.png", fake_png(1, 1));
    s.write(".cache/pip/x", "x");
    s.write("data/.hidden", "x");
    auto after = rich::snapshot(s.fd.get(), limits);
    REQUIRE(after);

    auto changes = rich::changed_files(*before, *after);
    REQUIRE(changes.size() == 3);
    CHECK(changes[0].path == "edit.csv");
    CHECK_FALSE(changes[0].created);
    CHECK(changes[0].state.size == 8);
    CHECK(changes[1].path == "new/out.png");
    CHECK(changes[1].created);
    CHECK(changes[2].path == "sub/replaced.txt");
    CHECK_FALSE(changes[2].created);

    rich::Content out;
    rich::add_file_links(out, changes, after->truncated, limits);
    REQUIRE(out.items.size() == 3);
    CHECK(out.notes.empty());
    CHECK(out.items[1] == json{{"type", "resource_link"},
                               {"uri", "kiln://workspace/new/out.png"},
                               {"name", "new/out.png"},
                               {"description", "created by this call: /workspace/new/out.png"},
                               {"mimeType", "image/png"},
                               {"size", fake_png(1, 1).size()}});
}

TEST_CASE("links are bounded, and notes say when the list or the walk was cut") {
    Scratch s;
    rich::Limits limits;
    limits.max_links = 2;
    limits.max_snapshot_entries = 3;
    auto before = rich::snapshot(s.fd.get(), limits);
    REQUIRE(before);
    for (int i = 0; i < 5; ++i) s.write("f" + std::to_string(i) + ".txt", "x");
    auto after = rich::snapshot(s.fd.get(), limits);
    REQUIRE(after);
    CHECK(after->truncated == wsfs::Truncation::Entries);
    auto changes = rich::changed_files(*before, *after);
    CHECK(changes.size() == 3);
    rich::Content out;
    rich::add_file_links(out, changes, after->truncated, limits);
    CHECK(out.items.size() == 2);
    CHECK(any_note_has(out, "1 more created or changed file not linked: at most 2 links per result (workspace.max_file_links)"));
    CHECK(any_note_has(out, "only partly compared"));
}

TEST_CASE("is_hidden looks at every path component") {
    CHECK(rich::is_hidden(".kiln/figures-1/a.png"));
    CHECK(rich::is_hidden("data/.git/config"));
    CHECK(rich::is_hidden(".env"));
    CHECK_FALSE(rich::is_hidden("data/v1.2/out.csv"));
    CHECK_FALSE(rich::is_hidden("out.csv"));
}

TEST_CASE("workspace URIs percent-encode the path and decode back") {
    std::string path = "my data/r\xc3\xa9sum\xc3\xa9 #1?.csv";
    std::string uri = rich::workspace_uri(path);
    CHECK(uri == "kiln://workspace/my%20data/r%C3%A9sum%C3%A9%20%231%3F.csv");
    CHECK(*rich::workspace_path(uri) == path);
    CHECK_FALSE(rich::workspace_path("kiln://workspace/bad%2"));
    CHECK_FALSE(rich::workspace_path("kiln://workspace/bad%zz"));
    CHECK_FALSE(rich::workspace_path("kiln://policy"));
    CHECK(rich::mime_type("a/b/OUT.CSV") == "text/csv");
    CHECK(rich::mime_type("noext") == "application/octet-stream");
    CHECK(rich::mime_type(".bashrc") == "application/octet-stream");
}

TEST_CASE("read_workspace_resource serves text and blobs, bounded and confined") {
    Scratch s;
    s.write("out.csv", "a,b\n1,2\n");
    std::string binary("\x00\x01\xfe\xff", 4);
    s.write("bin.dat", binary);
    s.write("big.txt", std::string(2000, 'x'));
    fs::create_symlink("../secret.txt", s.ws / "link.txt");

    auto text = rich::read_workspace_resource(s.fd.get(), "kiln://workspace/out.csv", 1000);
    REQUIRE(text);
    CHECK((*text)["contents"][0] == json{{"uri", "kiln://workspace/out.csv"}, {"mimeType", "text/csv"}, {"text", "a,b\n1,2\n"}});

    auto blob = rich::read_workspace_resource(s.fd.get(), "kiln://workspace/bin.dat", 1000);
    REQUIRE(blob);
    CHECK_FALSE((*blob)["contents"][0].contains("text"));
    CHECK(*base64_decode((*blob)["contents"][0]["blob"].get<std::string>()) == binary);

    auto big = rich::read_workspace_resource(s.fd.get(), "kiln://workspace/big.txt", 1000);
    REQUIRE_FALSE(big);
    CHECK(big.error().what().find("resources/read serves at most 1000B") != std::string::npos);

    // Refused the way the file tools refuse: lexically, and by the kernel for a symlink.
    const std::pair<const char*, const char*> refused[] = {{"kiln://workspace/../secret.txt", "'..'"},
                                                           {"kiln://workspace/%2E%2E/secret.txt", "'..'"},
                                                           {"kiln://workspace/link.txt", "outside the workspace"}};
    for (const auto& [uri, why] : refused) {
        CAPTURE(uri);
        auto r = rich::read_workspace_resource(s.fd.get(), uri, 1000);
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find(why) != std::string::npos);
    }
    auto missing = rich::read_workspace_resource(s.fd.get(), "kiln://workspace/nope.txt", 1000);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().err == ENOENT);
}

TEST_CASE("a figure directory yields its PNGs in name order and is removed with .kiln") {
    Scratch s;
    rich::Limits limits;
    limits.max_images = 2;
    {
        auto dir = rich::FigureDir::create(s.fd.get(), 7, {});
        REQUIRE(dir);
        CHECK(dir->path() == ".kiln/figures-7");
        s.write(dir->path() + "/figure-0002.png", fake_png(2, 2));
        s.write(dir->path() + "/figure-0001.png", fake_png(1, 1));
        s.write(dir->path() + "/figure-0003.png", fake_png(3, 3));
        s.write(dir->path() + "/notes.txt", "ignored");
        auto figs = dir->take(limits);
        REQUIRE(figs.size() == 3);
        CHECK(figs[0].name == "figure-0001.png");
        CHECK(rich::png_size(figs[1].bytes)->width == 2);
        CHECK(figs[2].bytes.empty());  // past max_images: counted, not read
        rich::Content out;
        rich::add_images(out, figs, limits);
        CHECK(out.items.size() == 2);
        CHECK(any_note_has(out, "1 more figure dropped"));
    }
    CHECK_FALSE(fs::exists(s.ws / ".kiln"));
}
