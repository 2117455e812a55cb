#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <thread>

#include "security/trust_store.hpp"

using namespace kiln::security;
namespace fs = std::filesystem;

namespace {
struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/kiln-trust-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};
}  // namespace

TEST_CASE("normalization ignores cosmetic whitespace only") {
    CHECK(normalize_code("print(1)\r\n") == normalize_code("print(1)   \n\n\n"));
    CHECK(normalize_code("print(1)") == "print(1)\n");
    CHECK(code_fingerprint("print(1)") != code_fingerprint("print(2)"));
    CHECK(code_fingerprint("a\n  b") != code_fingerprint("a\nb"));  // indentation matters
    CHECK(code_fingerprint("print(1)").size() == 64);
}

TEST_CASE("add, consume with a use count, expiry, remove") {
    TempDir d;
    TrustStore store((d.path / "state" / "trust.json").string());
    std::string h = code_fingerprint("print(1)");
    CHECK_FALSE(*store.consume(h));

    REQUIRE(store.add({h, "test", 0, std::nullopt, 2}).ok());
    struct stat st {};
    REQUIRE(::stat(store.path().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(*store.consume(h));
    CHECK(*store.consume(h));
    CHECK_FALSE(*store.consume(h));  // used up, and removed
    CHECK(store.list()->empty());

    std::string h2 = code_fingerprint("print(2)");
    REQUIRE(store.add({h2, "", 0, std::time(nullptr) - 1, std::nullopt}).ok());
    CHECK_FALSE(*store.consume(h2));  // expired
    REQUIRE(store.add({h2, "", 0, std::time(nullptr) + 3600, std::nullopt}).ok());
    CHECK(*store.consume(h2));
    CHECK(*store.consume(h2));  // unlimited uses
    CHECK(*store.remove(h2.substr(0, 12)));
    CHECK_FALSE(*store.remove(h2.substr(0, 12)));
    CHECK_FALSE(store.remove("abc").ok());  // prefix too short
    CHECK_FALSE(store.add({"not-a-hash", "", 0, {}, {}}).ok());
}

TEST_CASE("concurrent writers never lose an entry") {
    TempDir d;
    std::string path = (d.path / "trust.json").string();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            TrustStore store(path);
            for (int i = 0; i < 10; ++i) REQUIRE(store.add({code_fingerprint(std::to_string(t * 100 + i)), "", 0, {}, {}}).ok());
        });
    for (auto& t : threads) t.join();
    CHECK(TrustStore(path).list()->size() == 40);
}

TEST_CASE("a corrupt store is an error that says what to do") {
    TempDir d;
    std::string path = (d.path / "trust.json").string();
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs("{nope", f);
    std::fclose(f);
    auto r = TrustStore(path).list();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().what().find("fix or delete") != std::string::npos);
}
