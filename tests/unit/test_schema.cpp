#include <doctest/doctest.h>

#include "tools/schema.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

using namespace kiln::tools;
using nlohmann::json;

namespace {
const json kSchema = json::parse(R"({
  "type": "object",
  "properties": {
    "language": {"type": "string", "enum": ["python", "bash"]},
    "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 300},
    "code": {"type": "string", "maxLength": 10},
    "files": {"type": "array", "maxItems": 2,
              "items": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}
  },
  "required": ["language", "code"],
  "additionalProperties": false
})");

// The only violation of a value with exactly one mistake.
SchemaViolation only(const json& schema, const json& value) {
    auto v = check_schema(schema, value);
    REQUIRE(v.size() == 1);
    return v.front();
}
}  // namespace

TEST_CASE("valid arguments pass") {
    CHECK(check_schema(kSchema, {{"language", "python"}, {"code", "print(1)"}}).empty());
    CHECK(check_schema(kSchema, {{"language", "bash"}, {"code", "ls"}, {"timeout_seconds", 300}, {"files", json::array()}}).empty());
    // JSON Schema counts 5.0 as an integer.
    CHECK(check_schema(kSchema, {{"language", "bash"}, {"code", "ls"}, {"timeout_seconds", 5.0}}).empty());
}

TEST_CASE("violations name the field and the allowed values") {
    auto v = only(kSchema, {{"code", "x"}});
    CHECK(v.path == "language");
    CHECK(v.what() == "'language' is required: it must be one of \"python\", \"bash\"");

    v = only(kSchema, {{"language", "ruby"}, {"code", "x"}});
    CHECK(v.what() == "'language' must be one of \"python\", \"bash\" (got \"ruby\")");

    v = only(kSchema, {{"language", "bash"}, {"code", "x"}, {"timeout_seconds", 0}});
    CHECK(v.what() == "'timeout_seconds' must be an integer from 1 to 300 (got 0)");

    v = only(kSchema, {{"language", "bash"}, {"code", "x"}, {"timeout_seconds", 1.5}});
    CHECK(v.what() == "'timeout_seconds' must be an integer from 1 to 300 (got 1.5)");

    v = only(kSchema, {{"language", "bash"}, {"code", "0123456789x"}});
    CHECK(v.what() == "'code' must be a string of at most 10 characters (got 11)");

    v = only(kSchema, {{"language", "bash"}, {"code", "x"}, {"colour", "red"}});
    CHECK(v.what() == "'colour' is not a known field (known: code, files, language, timeout_seconds)");

    v = only(kSchema, {{"language", "bash"}, {"code", "x"}, {"files", {{{"nopath", 1}}}}});
    CHECK(v.what() == "'files[0].path' is required: it must be a string");

    v = only(kSchema, {{"language", "bash"}, {"code", "x"}, {"files", {{{"path", "a"}}, {{"path", "b"}}, {{"path", "c"}}}}});
    CHECK(v.what() == "'files' must be an array of at most 2 items (got 3 items)");
}

TEST_CASE("every violation is reported, each once, with its path") {
    const json args = {{"language", true},
                       {"timeout_seconds", 0},
                       {"colour", "red"},
                       {"shade", "dark"},
                       {"files", {{{"nopath", 1}}, {{"path", 3}}, {{"path", "c"}}}}};
    std::vector<std::string> got;
    for (const auto& v : check_schema(kSchema, args)) got.push_back(v.what());
    std::sort(got.begin(), got.end());
    CHECK(got == std::vector<std::string>{
                     "'code' is required: it must be a string of at most 10 characters",
                     "'colour' is not a known field (known: code, files, language, timeout_seconds)",
                     "'files' must be an array of at most 2 items (got 3 items)",
                     "'files[0].path' is required: it must be a string",
                     "'files[1].path' must be a string (got an integer)",
                     // A wrong type and a value outside the enum: said once.
                     "'language' must be one of \"python\", \"bash\" (got a boolean)",
                     "'shade' is not a known field (known: code, files, language, timeout_seconds)",
                     "'timeout_seconds' must be an integer from 1 to 300 (got 0)",
                 });
}

TEST_CASE("keywords beyond the basic ones are checked too") {
    auto v = only({{"type", "string"}, {"pattern", "^[a-z]+$"}}, "A1");
    CHECK(v.what() == "must be a string matching the pattern ^[a-z]+$ (got \"A1\")");

    v = only({{"type", "number"}, {"exclusiveMinimum", 0}}, 0);
    CHECK(v.what() == "must be a number greater than 0 (got 0)");

    v = only({{"type", "array"}, {"uniqueItems", true}}, {1, 1});
    CHECK(v.what().find("uniqueness") != std::string::npos);

    v = only({{"anyOf", {{{"type", "string"}}, {{"type", "integer"}}}}}, true);
    CHECK(v.what() == "must be a string or an integer (got a boolean)");
}

TEST_CASE("a long value is quoted only in part") {
    json s = {{"type", "string"}, {"enum", {"a", "b"}}};
    auto v = only(s, std::string(100000, 'x'));
    CHECK(v.message.size() < 150);
    CHECK(v.message.find("...") != std::string::npos);
}

TEST_CASE("string length counts characters, not bytes") {
    json s = {{"type", "string"}, {"maxLength", 2}};
    CHECK(check_schema(s, "\xC3\xA9\xC3\xA9").empty());  // two é
    CHECK(check_schema(s, "abc").size() == 1);
}

TEST_CASE("wrong top-level type") {
    auto v = only(kSchema, json::array());
    CHECK(v.path == "");
    CHECK(v.message == "must be an object (got an array)");
}

TEST_CASE("a schema valijson cannot read is refused when compiled") {
    CHECK_THROWS_AS(SchemaChecker(json{{"type", 5}}), std::invalid_argument);
    CHECK_THROWS_AS(SchemaChecker(json{{"$ref", "http://example.invalid/s.json"}}), std::invalid_argument);
}

#include "tools/debug_tools.hpp"
#include "tools/registry.hpp"

TEST_CASE("every diagnostic tool declares both schemas and annotations") {
    Registry r;
    register_debug_tools(r);
    for (const auto& t : r.all()) {
        json d = t->def().to_json();
        CHECK_MESSAGE(d.contains("outputSchema"), t->def().name);
        CHECK_MESSAGE(d["inputSchema"]["type"] == "object", t->def().name);
        CHECK(d["annotations"].contains("idempotentHint"));
    }
}

TEST_CASE("one call with several mistakes gets every one back in one isError result") {
    Registry r;
    register_debug_tools(r);
    Tool* echo = r.find("debug_echo");
    REQUIRE(echo);
    // A wrong type, a number out of range and two unknown fields.
    const json args = {{"text", 42}, {"repeat", 11}, {"colour", "red"}, {"size", 3}};
    ToolResult res = r.call(*echo, args, CallContext{});
    CHECK(res.is_error);
    const json wire = res.to_json();
    CHECK(wire["isError"] == true);
    const std::string text = wire["content"][0]["text"];
    INFO(text);
    CHECK(text.find("'text' must be a string of at most 1000 characters (got an integer)") != std::string::npos);
    CHECK(text.find("'repeat' must be an integer from 1 to 10 (got 11)") != std::string::npos);
    CHECK(text.find("'colour' is not a known field (known: repeat, text)") != std::string::npos);
    CHECK(text.find("'size' is not a known field (known: repeat, text)") != std::string::npos);
}
