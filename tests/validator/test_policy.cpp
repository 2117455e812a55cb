#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "tests/validator/helpers.hpp"
#include "security/policy.hpp"

using namespace kiln;
using namespace kiln::security;
using kiln::security::testing::preset;
using threat_model::Level;

namespace {

std::string temp_file(const std::string& text) {
    char path[] = "/tmp/kiln-policy-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    close(fd);
    return path;
}
}  // namespace

// kiln carries the presets as generated C++ (security/policy_gen); each must
// be exactly what applying its YAML to a default Policy gives.
TEST_CASE("the built-in presets are what their YAML files give") {
    for (const auto& name : preset_names()) {
        CAPTURE(name);
        std::ifstream in(std::string(KILN_PRESETS_DIR) + "/" + name + ".yaml", std::ios::binary);
        REQUIRE(in);
        std::stringstream text;
        text << in.rdbuf();
        Policy parsed;
        REQUIRE(apply_policy_yaml(parsed, text.str(), "preset " + name).ok());
        CHECK(preset(name).to_json() == parsed.to_json());
    }
}

TEST_CASE("presets encode the issue's thresholds") {
    Policy permissive = preset("permissive"), balanced = preset("balanced"), strict = preset("strict"),
           paranoid = preset("paranoid");
    CHECK(permissive.warn_only);
    CHECK(balanced.deny_at == Level::Critical);
    CHECK(balanced.ask_at == Level::High);
    CHECK_FALSE(balanced.warn_only);
    CHECK(strict.deny_at == Level::High);
    CHECK(strict.ask_at == Level::Medium);
    CHECK(paranoid.deny_at == Level::Medium);
    CHECK(paranoid.seccomp == SeccompProfile::Strict);
    CHECK(paranoid.command_allowlist_enabled);
    CHECK_FALSE(paranoid.command_allowlist.empty());
    for (const auto* p : {&permissive, &balanced, &strict, &paranoid}) CHECK(p->network == NetworkMode::None);
    CHECK(balanced.memory_bytes == 256ull << 20);
    CHECK(balanced.timeout == std::chrono::seconds(30));
    CHECK(balanced.ask_fallback == Decision::Deny);
    CHECK(paranoid.memory_bytes < balanced.memory_bytes);
    CHECK(balanced.to_json()["deny_at"] == "critical");
}

TEST_CASE("unknown preset names the choices") {
    PolicyConfig pc;
    pc.preset = "lax";
    auto p = load_policy(pc);
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().message.find("balanced") != std::string::npos);
}

TEST_CASE("a policy file overrides the preset; errors name key and line") {
    PolicyConfig pc;
    pc.preset = "balanced";
    pc.file = temp_file("memory: 512M\ncommand_allowlist_enabled: true\ncommand_allowlist: [python3, ls]\n");
    auto p = load_policy(pc);
    REQUIRE_MESSAGE(p.ok(), p.error().what());
    CHECK(p->memory_bytes == 512ull << 20);
    CHECK(p->command_allowlist == std::vector<std::string>{"python3", "ls"});
    CHECK(p->deny_at == Level::Critical);  // untouched keys keep the preset's value
    std::remove(pc.file.c_str());

    pc.file = temp_file("memory: 512M\n\nmemroy: 1G\n");
    auto unknown = load_policy(pc);
    REQUIRE_FALSE(unknown.ok());
    CHECK(unknown.error().step.find(":3") != std::string::npos);
    CHECK(unknown.error().message.find("memroy") != std::string::npos);
    std::remove(pc.file.c_str());

    pc.file = temp_file("deny_at: sometimes\n");
    auto bad = load_policy(pc);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.find("deny_at") != std::string::npos);
    std::remove(pc.file.c_str());

    pc.file = temp_file("network: host\n");
    auto network = load_policy(pc);
    REQUIRE_FALSE(network.ok());
    CHECK(network.error().message.find("'network': 'host' is not valid: expected none") != std::string::npos);
    std::remove(pc.file.c_str());

    pc.file = temp_file("seccomp: lax\n");
    auto seccomp = load_policy(pc);
    REQUIRE_FALSE(seccomp.ok());
    CHECK(seccomp.error().message.find("expected default or strict") != std::string::npos);
    std::remove(pc.file.c_str());

    pc.file = temp_file("deny_at: medium\nask_at: high\n");
    auto inverted = load_policy(pc);
    REQUIRE_FALSE(inverted.ok());
    CHECK(inverted.error().message.find("ask_at") != std::string::npos);
    std::remove(pc.file.c_str());

    pc.file = "/nonexistent/policy.yaml";
    auto missing = load_policy(pc);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().err == ENOENT);
}

// Every command's policy (serve, run, check, selftest): the preset, then
// policy.file, then the sandbox.* keys that are set, and nothing else.
TEST_CASE("effective_policy: the preset's limits unless a sandbox key is set") {
    for (const auto& name : preset_names()) {
        CAPTURE(name);
        Config c;
        c.policy.preset = name;
        auto p = effective_policy(c);
        REQUIRE(p.ok());
        CHECK(p->to_json() == preset(name).to_json());
    }
    Config c;
    c.policy.preset = "paranoid";
    c.sandbox.memory_bytes = 64ull << 20;
    c.sandbox.timeout = std::chrono::minutes(5);
    auto p = effective_policy(c);
    REQUIRE(p.ok());
    CHECK(p->memory_bytes == 64ull << 20);
    CHECK(p->timeout == std::chrono::minutes(5));
    CHECK(p->max_timeout == std::chrono::minutes(5));  // the bound grows with an operator's limit
    CHECK(p->seccomp == SeccompProfile::Strict);        // unset keys keep the preset's
    CHECK(p->pids == preset("paranoid").pids);
    c.sandbox.seccomp = SeccompProfile::Default;
    CHECK(effective_policy(c)->seccomp == SeccompProfile::Default);
}

TEST_CASE("the policy's fields come from one table: YAML keys, to_json and the presets agree") {
    Policy p;
    nlohmann::json j = p.to_json();
    for (const char* key : {"name", "deny_at", "ask_at", "warn_only", "unparseable", "memory_bytes", "cpus", "pids",
                            "timeout_ms", "tmp_size_bytes", "network", "seccomp", "max_timeout_ms", "max_memory_bytes",
                            "max_code_bytes", "command_allowlist_enabled", "command_allowlist", "ask_fallback"})
        CHECK_MESSAGE(j.contains(key), key);
    CHECK(j.size() == 18);
    CHECK(policy_initializers(p).size() == j.size());
    CHECK(j["seccomp"] == "default");
    CHECK(j["network"] == "none");
    auto unknown = apply_policy_yaml(p, "memroy: 1G\n", "test");
    REQUIRE_FALSE(unknown.ok());
    CHECK(unknown.error().message.find("known: name, deny_at, ask_at") != std::string::npos);
}
