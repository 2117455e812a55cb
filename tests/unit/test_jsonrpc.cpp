#include <doctest/doctest.h>

#include "server/jsonrpc.hpp"

using namespace kiln::jsonrpc;
using nlohmann::json;

namespace {
json single_reply(std::string_view text) {
    Parsed p = parse(text);
    REQUIRE(p.messages.size() == 1);
    auto* inv = std::get_if<Invalid>(&p.messages[0]);
    REQUIRE(inv != nullptr);
    return inv->reply;
}
}  // namespace

TEST_CASE("requests keep their id exactly, number or string") {
    for (const char* text : {R"({"jsonrpc":"2.0","id":7,"method":"ping"})", R"({"jsonrpc":"2.0","id":"7","method":"ping"})",
                             R"({"jsonrpc":"2.0","id":"abc","method":"ping"})", R"({"jsonrpc":"2.0","id":-3,"method":"ping"})"}) {
        Parsed p = parse(text);
        REQUIRE(p.messages.size() == 1);
        auto* req = std::get_if<Request>(&p.messages[0]);
        REQUIRE(req);
        CHECK(req->id == json::parse(text)["id"]);
        CHECK(make_result(req->id, json::object())["id"] == json::parse(text)["id"]);
    }
}

TEST_CASE("a message without id is a notification") {
    Parsed p = parse(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
    CHECK(std::holds_alternative<Notification>(p.messages[0]));
}

TEST_CASE("parse errors are -32700 with a null id") {
    for (const char* text : {"garbage", R"({"jsonrpc":"2.0","id":1,"method":)", "{\"a\":\"\xff\xfe\"}", ""}) {
        json r = single_reply(text);
        CHECK(r["error"]["code"] == kParseError);
        CHECK(r["id"].is_null());
    }
}

// Found by tests/fuzz/fuzz_jsonrpc: nlohmann throws out_of_range, not
// parse_error, for a number too large for a double, and it escaped parse()
// and ended the server.
TEST_CASE("a number too large for a double is a parse error, not an exception") {
    for (const char* text : {R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":1e400}})", "77e422", "[-1e999]"}) {
        json reply;
        CHECK_NOTHROW(reply = single_reply(text));
        CHECK(reply["error"]["code"] == kParseError);
        CHECK(reply["id"].is_null());
        CHECK(reply["error"]["message"].get<std::string>().find("number overflow") != std::string::npos);
    }
}

// Found by tests/fuzz/fuzz_jsonrpc: nlohmann stops reading at a NUL byte,
// so a valid message followed by NUL and anything at all was accepted.
TEST_CASE("a NUL byte anywhere is a parse error") {
    using namespace std::string_view_literals;
    for (std::string_view text : {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\0garbage"sv, "7\0"sv, "\0"sv,
                                  "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\0ing\"}"sv}) {
        json reply = single_reply(text);
        CHECK(reply["error"]["code"] == kParseError);
        CHECK(reply["id"].is_null());
    }
}

TEST_CASE("deep nesting is refused before it is parsed") {
    std::string deep(10000, '[');
    deep += std::string(10000, ']');
    json r = single_reply(deep);
    CHECK(r["error"]["code"] == kParseError);
    CHECK(r["error"]["message"].get<std::string>().find("nesting") != std::string::npos);
    // Brackets inside strings do not count.
    Parsed ok = parse(R"({"jsonrpc":"2.0","id":1,"method":"x","params":{"s":")" + std::string(500, '[') + R"("}})");
    CHECK(std::holds_alternative<Request>(ok.messages[0]));
}

TEST_CASE("invalid requests are -32600 and keep a valid id") {
    struct Case { const char* text; json id; };
    for (const auto& c : {Case{R"({"jsonrpc":"1.0","id":1,"method":"ping"})", 1},
                          Case{R"({"id":2,"method":"ping"})", 2},
                          Case{R"({"jsonrpc":"2.0","id":3,"method":42})", 3},
                          Case{R"({"jsonrpc":"2.0","id":{"x":1},"method":"ping"})", nullptr},
                          Case{R"({"jsonrpc":"2.0","id":4,"method":"ping","params":"str"})", 4},
                          Case{"42", nullptr}, Case{"null", nullptr}, Case{"[]", nullptr}}) {
        json r = single_reply(c.text);
        CHECK_MESSAGE(r["error"]["code"] == kInvalidRequest, c.text);
        CHECK_MESSAGE(r["id"] == c.id, c.text);
    }
}

TEST_CASE("a batch is classified element by element") {
    Parsed p = parse(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}, 5, {"jsonrpc":"2.0","method":"n"}])");
    CHECK(p.is_batch);
    REQUIRE(p.messages.size() == 3);
    CHECK(std::holds_alternative<Request>(p.messages[0]));
    CHECK(std::holds_alternative<Invalid>(p.messages[1]));
    CHECK(std::holds_alternative<Notification>(p.messages[2]));
}

TEST_CASE("responses from the client are recognised") {
    Parsed p = parse(R"({"jsonrpc":"2.0","id":"kiln-1","result":{"action":"accept"}})");
    auto* r = std::get_if<Response>(&p.messages[0]);
    REQUIRE(r);
    CHECK(r->result["action"] == "accept");
    json bad = single_reply(R"({"jsonrpc":"2.0","id":"kiln-1","result":{},"error":{}})");
    CHECK(bad["error"]["code"] == kInvalidRequest);
}

TEST_CASE("serialize never throws on invalid UTF-8") {
    json m = make_result(1, {{"text", std::string("\xff\xfe ok")}});
    std::string out = serialize(m);
    CHECK(out.find("ok") != std::string::npos);
}
