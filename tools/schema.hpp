// Checks a JSON value against a JSON Schema (draft 7) and reports every
// violation at once, each with its field path and what the field must be.
// This carries C004 at the door: every tool's arguments are checked against
// its declared inputSchema before the tool runs, and every structuredContent
// against outputSchema in the tests.
//
// Whether a value conforms is decided by valijson; this module only turns
// valijson's findings into messages an agent can act on ("'timeout_seconds'
// must be an integer from 1 to 300 (got 0)").
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace valijson {
class Schema;
}

namespace kiln::tools {

struct SchemaViolation {
    std::string path;     // "files[2].path"; "" for the root
    std::string message;  // "must be an integer from 1 to 300 (got 0)"
    std::string what() const;
};

// A schema compiled once, checked many times (from several threads at once).
class SchemaChecker {
public:
    // Throws std::invalid_argument when valijson cannot read `schema`.
    explicit SchemaChecker(nlohmann::json schema);
    ~SchemaChecker();
    SchemaChecker(SchemaChecker&&) noexcept;
    SchemaChecker& operator=(SchemaChecker&&) noexcept;

    // Every violation, in a stable order; empty when `value` conforms.
    std::vector<SchemaViolation> check(const nlohmann::json& value) const;

private:
    nlohmann::json schema_;
    std::unique_ptr<valijson::Schema> compiled_;
};

// Compiles `schema` and checks `value` against it: for tests and one-off checks.
std::vector<SchemaViolation> check_schema(const nlohmann::json& schema, const nlohmann::json& value);

// A one-line description of what a schema accepts: "an integer from 1 to
// 300", "one of \"python\", \"bash\"", "a string of at most 1000 characters".
std::string describe_schema(const nlohmann::json& schema);

}  // namespace kiln::tools
