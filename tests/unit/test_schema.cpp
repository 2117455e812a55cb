#include <doctest/doctest.h>

#include "tools/schema.hpp"

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
}

TEST_CASE("valid arguments pass") {
    CHECK_FALSE(check_schema(kSchema, {{"language", "python"}, {"code", "print(1)"}}));
    CHECK_FALSE(check_schema(kSchema, {{"language", "bash"}, {"code", "ls"}, {"timeout_seconds", 300}, {"files", json::array()}}));
    CHECK_FALSE(check_schema(kSchema, {{"language", "bash"}, {"code", "ls"}, {"timeout_seconds", 5.0}}));
}

TEST_CASE("violations name the field and the allowed values") {
    auto v = check_schema(kSchema, {{"code", "x"}});
    REQUIRE(v);
    CHECK(v->path == "language");
    CHECK(v->what() == "'language' is required: it must be one of \"python\", \"bash\"");

    v = check_schema(kSchema, {{"language", "ruby"}, {"code", "x"}});
    REQUIRE(v);
    CHECK(v->what() == "'language' must be one of \"python\", \"bash\" (got \"ruby\")");

    v = check_schema(kSchema, {{"language", "bash"}, {"code", "x"}, {"timeout_seconds", 0}});
    REQUIRE(v);
    CHECK(v->what() == "'timeout_seconds' must be an integer from 1 to 300 (got 0)");

    v = check_schema(kSchema, {{"language", "bash"}, {"code", "x"}, {"timeout_seconds", 1.5}});
    REQUIRE(v);
    CHECK(v->path == "timeout_seconds");

    v = check_schema(kSchema, {{"language", "bash"}, {"code", "0123456789x"}});
    REQUIRE(v);
    CHECK(v->what() == "'code' must be a string of at most 10 characters (got 11)");

    v = check_schema(kSchema, {{"language", "bash"}, {"code", "x"}, {"colour", "red"}});
    REQUIRE(v);
    CHECK(v->path == "colour");
    CHECK(v->message.find("not a known field") != std::string::npos);

    v = check_schema(kSchema, {{"language", "bash"}, {"code", "x"}, {"files", {{{"nopath", 1}}}}});
    REQUIRE(v);
    CHECK(v->path == "files[0].path");

    v = check_schema(kSchema, {{"language", "bash"}, {"code", "x"}, {"files", {{{"path", "a"}}, {{"path", "b"}}, {{"path", "c"}}}}});
    REQUIRE(v);
    CHECK(v->what() == "'files' must be an array of at most 2 items (got 3 items)");
}

TEST_CASE("string length counts characters, not bytes") {
    json s = {{"type", "string"}, {"maxLength", 2}};
    CHECK_FALSE(check_schema(s, "\xC3\xA9\xC3\xA9"));  // two é
    CHECK(check_schema(s, "abc"));
}

TEST_CASE("wrong top-level type") {
    auto v = check_schema(kSchema, json::array());
    REQUIRE(v);
    CHECK(v->message == "must be an object (got an array)");
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
