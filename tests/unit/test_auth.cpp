// Authentication of the HTTP transport: bearer tokens from a file, JWT
// access tokens against a JWKS (real RSA and EC keys, real signatures),
// scopes, the protected-resource metadata and reload.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/config.hpp"
#include "common/hash.hpp"
#include "server/auth.hpp"
#include "server/bearer_tokens.hpp"
#include "server/jwks.hpp"
#include "tests/unit/auth_test_keys.hpp"

using namespace kiln;
using namespace kiln::auth;
using nlohmann::json;
using std::chrono::seconds;
using std::chrono::system_clock;

namespace {

const std::string kIssuer = "https://issuer.test";
const std::string kResource = "https://kiln.test/mcp";
const std::string kMetadataUrl = "https://kiln.test/.well-known/oauth-protected-resource/mcp";

using test::TempDir;

// The keys, the JWKS file and an authenticator in jwt mode.
struct JwtFixture {
    TempDir dir;
    test::Pkey rsa = test::new_rsa_key();
    test::Pkey ec = test::new_p256_key();
    std::string jwks_path;
    AuthConfig config;
    std::unique_ptr<Authenticator> auth;
    system_clock::time_point now = system_clock::now();

    explicit JwtFixture(std::vector<std::string> run_scopes = {}) {
        jwks_path = dir.write("jwks.json", json{{"keys", {test::rsa_jwk(rsa, "rsa-1"), test::p256_jwk(ec, "ec-1")}}}.dump());
        config.mode = AuthMode::Jwt;
        config.jwks_file = jwks_path;
        config.issuer = kIssuer;
        config.resource = kResource;
        config.scopes = {"kiln:read"};
        config.run_scopes = std::move(run_scopes);
        auto a = Authenticator::create(config);
        REQUIRE_MESSAGE(a.ok(), (a.ok() ? "" : a.error().what()));
        auth = std::move(*a);
    }

    json claims(int exp_in = 300) const {
        long t = std::chrono::duration_cast<seconds>(now.time_since_epoch()).count();
        return {{"iss", kIssuer}, {"aud", kResource}, {"sub", "alice"}, {"exp", t + exp_in},
                {"iat", t}, {"scope", "kiln:read kiln:run"}};
    }
    std::string rs256(const json& c, const std::string& kid = "rsa-1") const {
        return test::sign_jwt({{"alg", "RS256"}, {"typ", "at+jwt"}, {"kid", kid}}, c, rsa);
    }
    std::string es256(const json& c) const { return test::sign_jwt({{"alg", "ES256"}, {"kid", "ec-1"}}, c, ec); }

    std::variant<Principal, AuthFailure> present(const std::string& token) const {
        return auth->authenticate("Bearer " + token, now);
    }
};

AuthFailure failure_of(const std::variant<Principal, AuthFailure>& r) {
    REQUIRE_MESSAGE(std::holds_alternative<AuthFailure>(r), "the request was let in");
    return std::get<AuthFailure>(r);
}

Principal principal_of(const std::variant<Principal, AuthFailure>& r) {
    if (auto* f = std::get_if<AuthFailure>(&r)) FAIL("refused: ", reason_name(f->reason), " ", f->www_authenticate);
    return std::get<Principal>(r);
}

void check_invalid_token(const std::variant<Principal, AuthFailure>& r, AuthReason reason) {
    AuthFailure f = failure_of(r);
    CHECK(reason_name(f.reason) == reason_name(reason));
    CHECK(f.status == 401);
    CHECK(f.www_authenticate.rfind("Bearer ", 0) == 0);
    CHECK(f.www_authenticate.find("error=\"invalid_token\"") != std::string::npos);
    CHECK(f.www_authenticate.find("resource_metadata=\"" + kMetadataUrl + "\"") != std::string::npos);
}

}  // namespace

TEST_CASE("jwt: good RS256 and ES256 tokens give the principal and its scopes") {
    JwtFixture fx;
    Principal p = principal_of(fx.present(fx.rs256(fx.claims())));
    CHECK(p.name == "alice");
    CHECK(p.scopes == std::set<std::string>{"kiln:read", "kiln:run"});

    json c = fx.claims();
    c["sub"] = "bob";
    c["aud"] = {"https://other.test", kResource};  // aud as an array holding this resource
    c.erase("scope");
    c["scp"] = {"kiln:read"};
    p = principal_of(fx.present(fx.es256(c)));
    CHECK(p.name == "bob");
    CHECK(p.scopes == std::set<std::string>{"kiln:read"});
}

TEST_CASE("jwt: no token, or not a Bearer one, is 401 with resource_metadata and no error code") {
    JwtFixture fx;
    for (std::string header : {"", "Basic YWxpY2U6c2VjcmV0"}) {
        AuthFailure f = failure_of(fx.auth->authenticate(header, fx.now));
        CHECK(f.status == 401);
        CHECK(f.reason == AuthReason::Missing);
        CHECK(f.www_authenticate == "Bearer resource_metadata=\"" + kMetadataUrl + "\", scope=\"kiln:read\"");
    }
    AuthFailure f = failure_of(fx.auth->authenticate("Bearer", fx.now));
    CHECK(f.status == 400);
    CHECK(f.reason == AuthReason::MalformedHeader);
    f = failure_of(fx.auth->authenticate("Bearer a\"b", fx.now));
    CHECK(f.status == 400);
    // The scheme is case-insensitive.
    CHECK(std::holds_alternative<Principal>(fx.auth->authenticate("bearer " + fx.rs256(fx.claims()), fx.now)));
}

TEST_CASE("jwt: expired, not yet valid, wrong audience, wrong issuer -> 401 with the reason") {
    JwtFixture fx;
    json c = fx.claims(-120);  // expired two minutes ago, past the 60 s skew
    check_invalid_token(fx.present(fx.rs256(c)), AuthReason::Expired);
    c = fx.claims(-30);  // expired 30 s ago: within the skew
    CHECK(std::holds_alternative<Principal>(fx.present(fx.rs256(c))));

    c = fx.claims();
    c["nbf"] = c["iat"].get<long>() + 120;
    check_invalid_token(fx.present(fx.rs256(c)), AuthReason::NotYetValid);
    c["nbf"] = c["iat"].get<long>() + 30;
    CHECK(std::holds_alternative<Principal>(fx.present(fx.rs256(c))));

    c = fx.claims();
    c["aud"] = "https://other-server.test/mcp";
    check_invalid_token(fx.present(fx.rs256(c)), AuthReason::WrongAudience);
    c["aud"] = {"https://other-server.test/mcp"};
    check_invalid_token(fx.present(fx.es256(c)), AuthReason::WrongAudience);
    c.erase("aud");
    check_invalid_token(fx.present(fx.rs256(c)), AuthReason::WrongAudience);

    c = fx.claims();
    c["iss"] = "https://evil.test";
    check_invalid_token(fx.present(fx.rs256(c)), AuthReason::WrongIssuer);

    c = fx.claims();
    c.erase("exp");  // a token good forever is not accepted
    check_invalid_token(fx.present(fx.rs256(c)), AuthReason::Malformed);
}

TEST_CASE("jwt: bad signature, alg none, HS256 keyed with the public key, unknown kid -> 401") {
    JwtFixture fx;
    // The payload changed after signing: same header and signature.
    std::string good = fx.rs256(fx.claims());
    json forged = fx.claims();
    forged["sub"] = "mallory";
    std::string tampered = good.substr(0, good.find('.')) + "." + test::b64url(forged.dump()) + good.substr(good.rfind('.'));
    check_invalid_token(fx.present(tampered), AuthReason::BadSignature);
    // Signed by a key that is not in the JWKS, under a kid that is.
    auto stranger = test::new_rsa_key();
    check_invalid_token(fx.present(test::sign_jwt({{"alg", "RS256"}, {"kid", "rsa-1"}}, fx.claims(), stranger)),
                        AuthReason::BadSignature);
    std::string es = fx.es256(fx.claims());
    char& first = es[es.rfind('.') + 1];  // the top bits of r
    first = first == 'A' ? 'B' : 'A';
    check_invalid_token(fx.present(es), AuthReason::BadSignature);
    // The last character of a 64-byte signature carries 4 unused bits: set
    // them and the bytes are the same, but the text is not canonical.
    std::string es2 = fx.es256(fx.claims());
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    es2.back() = alphabet[alphabet.find(es2.back()) | 1];
    check_invalid_token(fx.present(es2), AuthReason::BadSignature);

    std::string none = test::b64url(R"({"alg":"none"})") + "." + test::b64url(fx.claims().dump()) + ".";
    check_invalid_token(fx.present(none), AuthReason::UnsupportedAlgorithm);
    std::string hs = test::sign_hs256({{"alg", "HS256"}, {"kid", "rsa-1"}}, fx.claims(), test::public_pem(fx.rsa));
    check_invalid_token(fx.present(hs), AuthReason::UnsupportedAlgorithm);

    check_invalid_token(fx.present(fx.rs256(fx.claims(), "rsa-2")), AuthReason::UnknownKey);
    // An ES256 header naming the RSA key's kid: no key of that algorithm.
    check_invalid_token(fx.present(test::sign_jwt({{"alg", "ES256"}, {"kid", "rsa-1"}}, fx.claims(), fx.ec)),
                        AuthReason::UnknownKey);

    check_invalid_token(fx.present("not-a-jwt"), AuthReason::Malformed);
    check_invalid_token(fx.present("e30.e30.e30.e30"), AuthReason::Malformed);
}

TEST_CASE("scopes: a run tool without the run scope is 403 insufficient_scope naming the scopes") {
    JwtFixture fx({"kiln:run"});
    json c = fx.claims();
    c["scope"] = "kiln:read";
    Principal reader = principal_of(fx.present(fx.rs256(c)));
    CHECK_FALSE(fx.auth->authorize(reader, "read_file").has_value());
    CHECK_FALSE(fx.auth->authorize(reader, "").has_value());
    for (const char* tool : {"run_code", "run_command"}) {
        auto denied = fx.auth->authorize(reader, tool);
        REQUIRE(denied.has_value());
        CHECK(denied->status == 403);
        CHECK(denied->reason == AuthReason::InsufficientScope);
        CHECK(denied->www_authenticate.find("error=\"insufficient_scope\"") != std::string::npos);
        CHECK(denied->www_authenticate.find("scope=\"kiln:read kiln:run\"") != std::string::npos);
        CHECK(denied->www_authenticate.find("resource_metadata=\"" + kMetadataUrl + "\"") != std::string::npos);
    }
    Principal runner = principal_of(fx.present(fx.rs256(fx.claims())));
    CHECK_FALSE(fx.auth->authorize(runner, "run_code").has_value());
    // Without the base scope even the read-only tools are refused.
    c["scope"] = "kiln:run";
    auto denied = fx.auth->authorize(principal_of(fx.present(fx.rs256(c))), "list_files");
    REQUIRE(denied.has_value());
    CHECK(denied->status == 403);
}

TEST_CASE("jwks reload: a new key is accepted after reload, a broken file keeps the old keys") {
    JwtFixture fx;
    auto rotated = test::new_rsa_key();
    std::string token = test::sign_jwt({{"alg", "RS256"}, {"kid", "rsa-2"}}, fx.claims(), rotated);
    check_invalid_token(fx.present(token), AuthReason::UnknownKey);

    fx.dir.write("jwks.json", json{{"keys", {test::rsa_jwk(rotated, "rsa-2")}}}.dump());
    REQUIRE(fx.auth->reload().ok());
    CHECK(principal_of(fx.present(token)).name == "alice");
    check_invalid_token(fx.present(fx.rs256(fx.claims())), AuthReason::UnknownKey);  // rsa-1 is gone

    fx.dir.write("jwks.json", "{\"keys\": [");
    Status st = fx.auth->reload();
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().what().find(fx.jwks_path) != std::string::npos);
    CHECK(principal_of(fx.present(token)).name == "alice");
}

TEST_CASE("jwks: weak, unusable and malformed keys") {
    auto weak = test::new_rsa_key(1024);
    auto st = Jwks::parse(json{{"keys", {test::rsa_jwk(weak, "w")}}}.dump(), "jwks.json");
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().what().find("keys[0].n") != std::string::npos);
    CHECK(st.error().what().find("1024-bit") != std::string::npos);

    auto rsa = test::new_rsa_key();
    json enc = test::rsa_jwk(rsa, "enc");
    enc["use"] = "enc";
    json ps = test::rsa_jwk(rsa, "ps", "PS256");
    json oct = {{"kty", "oct"}, {"k", "c2VjcmV0"}};
    auto skipped = Jwks::parse(json{{"keys", {enc, ps, oct, test::rsa_jwk(rsa, "ok")}}}.dump(), "jwks.json");
    REQUIRE(skipped.ok());
    CHECK(skipped->size() == 1);
    CHECK(skipped->skipped() == 3);
    CHECK_FALSE(Jwks::parse(json{{"keys", {enc, oct}}}.dump(), "jwks.json").ok());

    json broken = test::rsa_jwk(rsa, "b");
    broken["e"] = "not base64url!";
    st = Jwks::parse(json{{"keys", {test::rsa_jwk(rsa, "ok"), broken}}}.dump(), "jwks.json");
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().what().find("keys[1].e") != std::string::npos);

    json off_curve = test::p256_jwk(test::new_p256_key(), "ec");
    off_curve["y"] = off_curve["x"];
    CHECK_FALSE(Jwks::parse(json{{"keys", {off_curve}}}.dump(), "jwks.json").ok());
}

TEST_CASE("protected-resource metadata (RFC 9728)") {
    JwtFixture fx({"kiln:run"});
    auto doc = fx.auth->protected_resource_metadata();
    REQUIRE(doc.has_value());
    CHECK((*doc)["resource"] == kResource);
    CHECK((*doc)["authorization_servers"] == json::array({kIssuer}));
    CHECK((*doc)["scopes_supported"] == json::array({"kiln:read", "kiln:run"}));
    CHECK((*doc)["bearer_methods_supported"] == json::array({"header"}));
    CHECK(fx.auth->metadata_paths() ==
          std::vector<std::string>{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"});
    CHECK(fx.auth->resource_metadata_url() == kMetadataUrl);
}

TEST_CASE("tokens: a listed token gives its principal and scopes, any other is 401") {
    TempDir dir;
    std::string alice = "kiln_alice-token-0123456789abcdefghijklmnop";
    std::string bob = "kiln_bob-token-0123456789abcdefghijklmnopqrs";
    std::string path = dir.write("tokens", "# principals\nalice sha256:" + sha256_hex(alice) +
                                                 " kiln:read kiln:run\n\nbob " + bob + "   # plain, hashed on load\n");
    AuthConfig c;
    c.mode = AuthMode::Tokens;
    c.tokens_file = path;
    c.run_scopes = {"kiln:run"};
    auto a = Authenticator::create(c);
    REQUIRE_MESSAGE(a.ok(), (a.ok() ? "" : a.error().what()));
    Principal p = principal_of((*a)->authenticate("Bearer " + alice));
    CHECK(p.name == "alice");
    CHECK(p.scopes == std::set<std::string>{"kiln:read", "kiln:run"});
    p = principal_of((*a)->authenticate("Bearer " + bob));
    CHECK(p.name == "bob");
    CHECK(p.scopes.empty());
    CHECK((*a)->authorize(p, "run_code").has_value());
    CHECK_FALSE((*a)->authorize(p, "read_file").has_value());

    AuthFailure f = failure_of((*a)->authenticate("Bearer " + alice.substr(0, alice.size() - 1) + "X"));
    CHECK(f.status == 401);
    CHECK(f.reason == AuthReason::UnknownToken);
    CHECK(f.www_authenticate == "Bearer realm=\"kiln\", error=\"invalid_token\", error_description=\"the token is not known\"");
    f = failure_of((*a)->authenticate(""));
    CHECK(f.reason == AuthReason::Missing);
    CHECK(f.www_authenticate == "Bearer realm=\"kiln\"");
    // The digest itself is not a token.
    CHECK(failure_of((*a)->authenticate("Bearer " + sha256_hex(alice))).reason == AuthReason::UnknownToken);
    CHECK_FALSE((*a)->protected_resource_metadata().has_value());
}

TEST_CASE("tokens file errors name the line and never the token") {
    std::string secret = "kiln_secret-token-0123456789abcdefghijkl";
    struct Case {
        std::string text;
        std::string where, says;
    } cases[] = {
        {"alice " + secret + "\nbob\n", "t:2", "expected '<principal>"},
        {"# c\nal!ce " + secret + "\n", "t:2", "principal"},
        {"alice sha256:abcd\n", "t:1", "64 hex digits"},
        {"alice short-token\n", "t:1", "shorter than 32"},
        {"alice " + secret + " bad\"scope\n", "t:1", "scope 1"},
        {"alice " + secret + "\nbob sha256:" + sha256_hex(secret) + "\n", "t:2", "same token as line 1"},
        {"# only comments\n\n", "t", "holds no token"},
    };
    for (const auto& c : cases) {
        auto r = BearerTokens::parse(c.text, "t");
        REQUIRE_FALSE(r.ok());
        std::string what = r.error().what();
        CHECK_MESSAGE(what.find("tokens file " + c.where) != std::string::npos, what);
        CHECK_MESSAGE(what.find(c.says) != std::string::npos, what);
        CHECK(what.find(secret) == std::string::npos);
    }
}

TEST_CASE("tokens: a fresh token is 256 random bits and a valid bearer token") {
    auto t1 = new_token(), t2 = new_token();
    REQUIRE(t1.ok());
    REQUIRE(t2.ok());
    CHECK(*t1 != *t2);
    CHECK(t1->size() == 5 + 43);
    CHECK(is_b64token(*t1));
    CHECK(BearerTokens::parse("ci " + *t1 + "\n", "t").ok());
}

TEST_CASE("auth config: each mode's keys are required, others refused, naming the key") {
    auto error_of = [](const AuthConfig& c) {
        auto a = Authenticator::create(c);
        return a.ok() ? std::string() : a.error().what();
    };
    AuthConfig c;
    c.mode = AuthMode::Jwt;
    c.jwks_file = "/nonexistent/jwks.json";
    c.resource = kResource;
    CHECK(error_of(c).find("server.auth.issuer") != std::string::npos);
    c.issuer = kIssuer;
    CHECK(error_of(c).find("/nonexistent/jwks.json") != std::string::npos);
    c.tokens_file = "/etc/tokens";
    CHECK(error_of(c).find("server.auth.tokens_file") != std::string::npos);

    AuthConfig none;
    none.scopes = {"kiln:read"};
    CHECK(error_of(none).find("server.auth.scopes") != std::string::npos);
    AuthConfig tokens;
    tokens.mode = AuthMode::Tokens;
    CHECK(error_of(tokens).find("server.auth.tokens_file") != std::string::npos);

    AuthConfig open;
    auto a = Authenticator::create(open);
    REQUIRE(a.ok());
    CHECK(principal_of((*a)->authenticate("")).name == "anonymous");
}

TEST_CASE("config: server.auth and server.tls keys, nested in YAML and from the environment") {
    TempDir dir;
    std::string path = dir.write("kiln.yaml",
                                 "server:\n  auth:\n    mode: jwt\n    scopes: kiln:read  kiln:list\n    run_scopes: [kiln:run, kiln:exec]\n"
                                 "    authorization_servers: https://a.test, https://b.test\n    clock_skew: 30s\n"
                                 "  tls:\n    cert_file: /etc/kiln/cert.pem\n");
    Config c;
    Status st = config_load_yaml(c, path);
    REQUIRE_MESSAGE(st.ok(), (st.ok() ? "" : st.error().what()));
    CHECK(c.auth.mode == AuthMode::Jwt);
    CHECK(c.auth.scopes == std::vector<std::string>{"kiln:read", "kiln:list"});
    CHECK(c.auth.run_scopes == std::vector<std::string>{"kiln:run", "kiln:exec"});
    CHECK(c.auth.authorization_servers == std::vector<std::string>{"https://a.test", "https://b.test"});
    CHECK(c.auth.clock_skew == seconds(30));
    CHECK(c.tls.cert_file == "/etc/kiln/cert.pem");
    CHECK(c.origin["server.auth.mode"] == "file:" + path + ":3");
    CHECK(c.origin["server.tls.cert_file"] == "file:" + path + ":9");
    std::string printed = config_to_yaml(c);
    CHECK(printed.find("  auth:\n    mode: jwt") != std::string::npos);
    CHECK(printed.find("  tls:\n    cert_file: /etc/kiln/cert.pem") != std::string::npos);
    // The server section `kiln config print` shows loads back to the same values.
    std::string again = dir.write("again.yaml", printed.substr(0, printed.find("\nsandbox:") + 1));
    Config c2;
    REQUIRE(config_load_yaml(c2, again).ok());
    CHECK(c2.auth.scopes == c.auth.scopes);

    std::string env0 = "KILN_SERVER_AUTH_ISSUER=https://issuer.test", env1 = "KILN_SERVER_TLS_KEY_FILE=/k.pem";
    char* env[] = {env0.data(), env1.data(), nullptr};
    REQUIRE(config_load_env(c, env).ok());
    CHECK(c.auth.issuer == "https://issuer.test");
    CHECK(c.tls.key_file == "/k.pem");

    auto refused = [&](const std::string& key, const std::string& value, const std::string& says) {
        Status s = config_set(c, key, value, "test");
        REQUIRE_FALSE(s.ok());
        CHECK_MESSAGE(s.error().what().find(key) != std::string::npos, s.error().what());
        CHECK_MESSAGE(s.error().what().find(says) != std::string::npos, s.error().what());
    };
    refused("server.auth.mode", "oauth", "none, tokens or jwt");
    refused("server.auth.scopes", "kiln:read bad\"scope", "scope token");
    refused("server.auth.resource", "kiln.test/mcp", "absolute https://");
    refused("server.auth.resource", "https://kiln.test/mcp#frag", "without a fragment");
    refused("server.auth.clock_skew", "10m", "from 0s to 300s");
    std::string bad = dir.write("bad.yaml", "server:\n  auth:\n    mood: jwt\n");
    st = config_load_yaml(c, bad);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().what().find(bad + ":3") != std::string::npos);
    CHECK(st.error().what().find("server.auth.mood") != std::string::npos);
}

TEST_CASE("tokens reload: a line added to the file lets its token in after reload()") {
    TempDir dir;
    std::string first = "kiln_first-token-0123456789abcdefghijklmn", second = "kiln_second-token-0123456789abcdefghijklm";
    std::string path = dir.write("tokens", "alice " + first + "\n");
    AuthConfig c;
    c.mode = AuthMode::Tokens;
    c.tokens_file = path;
    auto a = Authenticator::create(c);
    REQUIRE(a.ok());
    CHECK(failure_of((*a)->authenticate("Bearer " + second)).reason == AuthReason::UnknownToken);
    dir.write("tokens", "bob " + second + "\n");
    REQUIRE((*a)->reload().ok());
    CHECK(principal_of((*a)->authenticate("Bearer " + second)).name == "bob");
    CHECK(failure_of((*a)->authenticate("Bearer " + first)).reason == AuthReason::UnknownToken);
}

TEST_CASE("reload while other threads authenticate: every answer is a whole old or new key set") {
    JwtFixture fx;
    std::string token = fx.rs256(fx.claims());
    std::atomic<bool> stop{false};
    std::atomic<int> accepted{0}, refused{0};
    std::vector<std::thread> callers;
    for (int i = 0; i < 4; ++i)
        callers.emplace_back([&] {
            while (!stop) (std::holds_alternative<Principal>(fx.present(token)) ? accepted : refused)++;
        });
    // At least 50 reloads, and on until the callers have been answered
    // often enough to have overlapped them (a loaded machine may start the
    // threads late).
    auto deadline = std::chrono::steady_clock::now() + seconds(20);
    for (int i = 0; (i < 50 || accepted < 200) && std::chrono::steady_clock::now() < deadline; ++i)
        REQUIRE(fx.auth->reload().ok());
    stop = true;
    for (auto& t : callers) t.join();
    CHECK(accepted >= 200);
    CHECK(refused == 0);
}
