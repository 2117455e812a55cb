#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "common/config.hpp"
#include "common/units.hpp"

using namespace kiln;

namespace {
std::string write_temp(const std::string& text) {
    char path[] = "/tmp/kiln-config-test-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    ::close(fd);
    return path;
}
}  // namespace

TEST_CASE("sizes and durations") {
    CHECK(*parse_size("256M") == 256ull << 20);
    CHECK(*parse_size("1GiB") == 1ull << 30);
    CHECK(*parse_size("512") == 512);
    CHECK_FALSE(parse_size("12Q").ok());
    CHECK_FALSE(parse_size("M").ok());
    CHECK(parse_duration("10s")->count() == 10'000);
    CHECK(parse_duration("500ms")->count() == 500);
    CHECK(parse_duration("2m")->count() == 120'000);
    CHECK_FALSE(parse_duration("5 fortnights").ok());
}

TEST_CASE("YAML file: values land in the struct with their origin") {
    std::string path = write_temp("server:\n  max_inflight_calls: 3\nsandbox:\n  memory: 512M\n  timeout: 5s\n");
    Config c;
    REQUIRE(config_load_yaml(c, path).ok());
    CHECK(c.server.max_inflight_calls == 3);
    CHECK(c.sandbox.memory_bytes == 512ull << 20);
    CHECK(c.sandbox.timeout == std::chrono::milliseconds(5000));
    CHECK(c.origin["sandbox.memory"] == "file:" + path + ":4");
    CHECK(config_to_yaml(c).find("memory: 512MiB") != std::string::npos);
    unlink(path.c_str());
}

TEST_CASE("unknown keys and bad values name the key and the line") {
    std::string path = write_temp("sandbox:\n  memory: 512M\n  memroy: 1G\n");
    Config c;
    Status st = config_load_yaml(c, path);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().what().find(path + ":3") != std::string::npos);
    CHECK(st.error().what().find("sandbox.memroy") != std::string::npos);
    unlink(path.c_str());

    path = write_temp("sandbox:\n  pids: lots\n");
    st = config_load_yaml(c, path);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().what().find(path + ":2") != std::string::npos);
    CHECK(st.error().what().find("an integer from 1 to 65536") != std::string::npos);
    unlink(path.c_str());

    path = write_temp("policy:\n  preset: lax\n");
    st = config_load_yaml(c, path);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().what().find("one of permissive, balanced, strict, paranoid") != std::string::npos);
    unlink(path.c_str());
}

TEST_CASE("environment variables map to keys; unknown ones are errors") {
    Config c;
    std::string a = "KILN_SANDBOX_PIDS=32", b = "KILN_SERVER_LOG_LEVEL=debug", other = "PATH=/bin";
    char* env[] = {a.data(), b.data(), other.data(), nullptr};
    REQUIRE(config_load_env(c, env).ok());
    CHECK(c.sandbox.pids == 32);
    CHECK(c.server.log_level == "debug");
    std::string bad = "KILN_SANDBOX_PIDZ=3";
    char* env2[] = {bad.data(), nullptr};
    Status st = config_load_env(c, env2);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().what().find("KILN_SANDBOX_PIDZ") != std::string::npos);
}

TEST_CASE("range checks on numbers") {
    Config c;
    CHECK_FALSE(config_set(c, "sandbox.cpus", "0", "test").ok());
    CHECK(config_set(c, "sandbox.cpus", "0.5", "test").ok());
    REQUIRE(c.sandbox.cpus);
    CHECK(*c.sandbox.cpus == doctest::Approx(0.5));
    CHECK_FALSE(config_set(c, "sandbox.memory", "1K", "test").ok());
    CHECK_FALSE(config_set(c, "no.such", "1", "test").ok());
}

TEST_CASE("choices are parsed into enums; errors name the allowed values") {
    Config c;
    REQUIRE(config_set(c, "policy.validation", "warn", "test").ok());
    CHECK(c.policy.validation == ValidationMode::Warn);
    REQUIRE(config_set(c, "audit.on_failure", "continue", "test").ok());
    CHECK(c.audit.on_failure == AuditOnFailure::Continue);
    REQUIRE(config_set(c, "workspace.network", "run", "test").ok());
    CHECK(c.workspace.network == WorkspaceNetwork::Run);
    REQUIRE(config_set(c, "sandbox.seccomp", "strict", "test").ok());
    CHECK(c.sandbox.seccomp == SeccompProfile::Strict);

    struct Bad {
        const char* key;
        const char* value;
        const char* allowed;
    };
    for (const Bad& b : {Bad{"policy.validation", "maybe", "expected enforce, warn or off"},
                         Bad{"audit.on_failure", "retry", "expected fail_closed or continue"},
                         Bad{"workspace.network", "host", "expected session or run"},
                         Bad{"sandbox.seccomp", "lax", "expected default or strict"},
                         Bad{"sandbox.runtime", "podman", "expected native or docker"}}) {
        CAPTURE(b.key);
        Status st = config_set(c, b.key, b.value, "test");
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().what().find(b.key) != std::string::npos);
        CHECK(st.error().what().find(b.allowed) != std::string::npos);
    }
}

// The Docker runtime's keys: the allowlist takes image ids and repository
// digests only, so a mutable tag can never stand for an allowed image (C005).
TEST_CASE("sandbox.runtime: docker and the sandbox.docker keys") {
    Config c;
    const std::string id = "sha256:" + std::string(64, 'a');
    REQUIRE(config_set(c, "sandbox.runtime", "docker", "test").ok());
    CHECK(c.sandbox.runtime == RuntimeKind::Docker);
    REQUIRE(config_set(c, "sandbox.docker.image", "kiln-test/python:bookworm", "test").ok());
    REQUIRE(config_set(c, "sandbox.docker.allowed_images", id + ", python@" + id, "test").ok());
    CHECK(c.docker.allowed_images == std::vector<std::string>{id, "python@" + id});
    REQUIRE(config_set(c, "sandbox.docker.pool_size", "4", "test").ok());
    CHECK(c.docker.pool_size == 4u);
    for (const char* bad : {"python:3.12", "sha256:abc", "@sha256:aaaa"}) {
        CAPTURE(bad);
        Status st = config_set(c, "sandbox.docker.allowed_images", bad, "test");
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().what().find("sandbox.docker.allowed_images") != std::string::npos);
        CHECK(st.error().what().find("sha256:<64 hex>") != std::string::npos);
    }
    Status st = config_set(c, "sandbox.docker.pool_size", "65", "test");
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().what().find("from 0 to 64") != std::string::npos);
}

// The HTTP transport's keys: nested or dotted in YAML, lists as sequences
// or comma-separated, env names with the subsection, bad values named.
TEST_CASE("server.transport: http and the server.http keys") {
    std::string path = write_temp("server:\n  transport: http\n  http:\n    listen: \"[::1]:9000\"\n"
                                  "    allowed_origins: [\"https://a.example\", \"http://localhost:*\"]\n"
                                  "  http.max_sessions: 7\n");
    Config c;
    Status st = config_load_yaml(c, path);
    REQUIRE_MESSAGE(st.ok(), st.error().what());
    CHECK(c.server.transport == Transport::Http);
    CHECK(c.http.listen == "[::1]:9000");
    CHECK(c.http.allowed_origins == std::vector<std::string>{"https://a.example", "http://localhost:*"});
    CHECK(c.http.max_sessions == 7);
    CHECK(c.origin["server.http.listen"] == "file:" + path + ":4");
    unlink(path.c_str());
    auto address = parse_listen_address(c.http.listen);
    REQUIRE(address.ok());
    CHECK(address->host == "::1");
    CHECK(address->port == 9000);

    char var[] = "KILN_SERVER_HTTP_MAX_SSE_STREAMS=5";
    char* env[] = {var, nullptr};
    REQUIRE(config_load_env(c, env).ok());
    CHECK(c.http.max_sse_streams == 5);

    struct Bad {
        const char *key, *value, *allowed;
    } bad[] = {
        {"server.http.listen", "8080", "host:port"},
        {"server.http.listen", "127.0.0.1:70000", "0 to 65535"},
        {"server.http.path", "mcp", "/mcp"},
        {"server.http.allowed_origins", "evil.example", "https://app.example.com"},
        {"server.http.max_calls", "0", "from 1 to 1024"},
        {"server.http.session_idle_timeout", "10ms", "a duration from"},
    };
    for (const auto& b : bad) {
        CAPTURE(b.key);
        Status err = config_set(c, b.key, b.value, "test");
        REQUIRE_FALSE(err.ok());
        CHECK(err.error().what().find(b.allowed) != std::string::npos);
    }
    std::string printed = config_to_yaml(c);
    CHECK(printed.find("\n  http:\n    listen: \"[::1]:9000\"") != std::string::npos);
}

// The sandbox.* limits are the policy's unless set: nothing but their being
// set decides whether they override it, and config print says which.
TEST_CASE("sandbox limits are unset by default, and config print says the policy's apply") {
    Config c;
    CHECK_FALSE(c.sandbox.memory_bytes);
    CHECK_FALSE(c.sandbox.cpus);
    CHECK_FALSE(c.sandbox.pids);
    CHECK_FALSE(c.sandbox.timeout);
    CHECK_FALSE(c.sandbox.tmp_size_bytes);
    CHECK_FALSE(c.sandbox.seccomp);
    std::string yaml = config_to_yaml(c);
    CHECK_MESSAGE(yaml.find("  memory: ~  # memory limit per run, no swap [unset: the policy's value]") != std::string::npos, yaml);
    CHECK(yaml.find("  seccomp: ~") != std::string::npos);
    REQUIRE(config_set(c, "sandbox.pids", "9", "flag:--pids").ok());
    CHECK(config_to_yaml(c).find("  pids: 9  # process limit per run [flag:--pids]") != std::string::npos);
}
