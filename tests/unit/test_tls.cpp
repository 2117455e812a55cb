// TLS for the HTTP transport: cpp-httplib's SSLServer on loopback with
// certificates made by the openssl command, a verifying client, and a
// certificate replaced on disk then reloaded.
#include <doctest/doctest.h>

#include <httplib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "server/tls.hpp"
#include "tests/unit/auth_test_keys.hpp"

using namespace kiln;

namespace {

using Dir = test::TempDir;

// A self-signed P-256 certificate for 127.0.0.1, written to <name>.crt and
// <name>.key.
void make_certificate(const Dir& dir, const std::string& name) {
    std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=" + name +
                      " -addext subjectAltName=IP:127.0.0.1 -keyout " + dir.file(name + ".key") + " -out " +
                      dir.file(name + ".crt") + " 2>/dev/null";
    REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "the openssl command failed: ", cmd);
}

void install(const Dir& dir, const std::string& name) {
    std::filesystem::copy_file(dir.file(name + ".crt"), dir.file("server.crt"), std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(dir.file(name + ".key"), dir.file("server.key"), std::filesystem::copy_options::overwrite_existing);
}

// GET /hello over TLS, trusting only `ca_file`: the body, or "" when the
// handshake or the certificate check fails.
std::string fetch(int port, const std::string& ca_file) {
    httplib::SSLClient client("127.0.0.1", port);
    client.set_ca_cert_path(ca_file.c_str());
    client.enable_server_certificate_verification(true);
    client.set_connection_timeout(5);
    auto res = client.Get("/hello");
    return res ? res->body : std::string();
}

struct Server {
    httplib::SSLServer server;
    int port = 0;
    std::thread thread;

    explicit Server(tls::Credentials& creds) : server([&creds](SSL_CTX& ctx) { return creds.setup(ctx); }) {
        REQUIRE(server.is_valid());
        server.Get("/hello", [](const httplib::Request&, httplib::Response& res) { res.set_content("hello", "text/plain"); });
        port = server.bind_to_any_port("127.0.0.1");
        REQUIRE(port > 0);
        thread = std::thread([this] { server.listen_after_bind(); });
        while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ~Server() {
        server.stop();
        thread.join();
    }
};

}  // namespace

TEST_CASE("tls: the server answers over TLS, and serves the new certificate after reload()") {
    Dir dir;
    make_certificate(dir, "first");
    make_certificate(dir, "second");
    install(dir, "first");
    TlsConfig config{dir.file("server.crt"), dir.file("server.key")};
    auto creds = tls::Credentials::load(config);
    REQUIRE_MESSAGE(creds.ok(), (creds.ok() ? "" : creds.error().what()));
    Server server(**creds);

    CHECK(fetch(server.port, dir.file("first.crt")) == "hello");
    CHECK(fetch(server.port, dir.file("second.crt")).empty());  // the client checks whom it talks to

    install(dir, "second");
    // Until reload() the first certificate is still served.
    CHECK(fetch(server.port, dir.file("first.crt")) == "hello");
    REQUIRE((*creds)->reload().ok());
    CHECK(fetch(server.port, dir.file("second.crt")) == "hello");
    CHECK(fetch(server.port, dir.file("first.crt")).empty());

    // A key that does not match: the reload fails, naming the file, and the
    // second certificate stays in use.
    std::filesystem::copy_file(dir.file("first.key"), dir.file("server.key"), std::filesystem::copy_options::overwrite_existing);
    Status st = (*creds)->reload();
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().what().find("server.tls.key_file") != std::string::npos);
    CHECK(st.error().what().find("does not belong") != std::string::npos);
    CHECK(fetch(server.port, dir.file("second.crt")) == "hello");
}

TEST_CASE("tls: incomplete or unreadable configuration names the key") {
    auto error_of = [](const TlsConfig& c) {
        auto r = tls::Credentials::load(c);
        return r.ok() ? std::string() : r.error().what();
    };
    CHECK(error_of({"/etc/kiln/cert.pem", ""}).find("server.tls.key_file") != std::string::npos);
    CHECK(error_of({"", "/etc/kiln/key.pem"}).find("server.tls.cert_file") != std::string::npos);
    Dir dir;
    CHECK(error_of({dir.file("none.crt"), dir.file("none.key")}).find("server.tls.cert_file " + dir.file("none.crt")) !=
          std::string::npos);
    std::ofstream(dir.file("junk.crt")) << "not a certificate\n";
    CHECK(error_of({dir.file("junk.crt"), dir.file("junk.crt")}).find("no PEM certificate") != std::string::npos);
}
