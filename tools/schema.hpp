// A JSON Schema checker for the subset tool schemas use (type, properties,
// required, additionalProperties, enum, const, minimum/maximum,
// minLength/maxLength, items, minItems/maxItems). Debian ships no
// C++ JSON Schema validator, so this small one carries C004 at the door:
// every tool's arguments are checked against its declared inputSchema
// before the tool runs, and every structuredContent against outputSchema in
// the tests.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace kiln::tools {

struct SchemaViolation {
    std::string path;     // "arguments.files[2].path"; "" for the root
    std::string message;  // "must be an integer from 1 to 300"
    std::string what() const;
};

// Returns the first violation, or nothing when `value` conforms.
std::optional<SchemaViolation> check_schema(const nlohmann::json& schema, const nlohmann::json& value,
                                            const std::string& root = "");

// A one-line description of what a schema accepts: "an integer from 1 to
// 300", "one of \"python\", \"bash\"", "a string of at most 1000 characters".
std::string describe_schema(const nlohmann::json& schema);

}  // namespace kiln::tools
