#include "tools/schema.hpp"

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string_view>

namespace kiln::tools {
namespace {

using nlohmann::json;

std::string type_of(const json& v) {
    switch (v.type()) {
        case json::value_t::null: return "null";
        case json::value_t::boolean: return "boolean";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned: return "integer";
        case json::value_t::number_float: return "number";
        case json::value_t::string: return "string";
        case json::value_t::array: return "array";
        case json::value_t::object: return "object";
        case json::value_t::binary: return "binary";
        case json::value_t::discarded: return "invalid";
    }
    return "invalid";
}

bool is_integral(const json& v) {
    if (v.is_number_integer() || v.is_number_unsigned()) return true;
    if (v.is_number_float()) {
        double d = v.get<double>();
        return std::isfinite(d) && std::floor(d) == d;
    }
    return false;
}

std::string article(const std::string& type) {
    return (type == "integer" || type == "object" || type == "array") ? "an " + type : "a " + type;
}

std::string number_text(const json& n) {
    if (is_integral(n)) return std::to_string(static_cast<long long>(n.get<double>()));
    return n.dump();
}

std::string range_text(const json& s) {
    if (s.contains("minimum") && s.contains("maximum"))
        return " from " + number_text(s["minimum"]) + " to " + number_text(s["maximum"]);
    std::string lower, upper;
    if (s.contains("minimum")) lower = "of at least " + number_text(s["minimum"]);
    else if (s.contains("exclusiveMinimum")) lower = "greater than " + number_text(s["exclusiveMinimum"]);
    if (s.contains("maximum")) upper = "of at most " + number_text(s["maximum"]);
    else if (s.contains("exclusiveMaximum")) upper = "less than " + number_text(s["exclusiveMaximum"]);
    if (!lower.empty() && !upper.empty()) return " " + lower + " and " + upper;
    return lower.empty() && upper.empty() ? "" : " " + lower + upper;
}

std::string length_text(const json& s, const char* min_key, const char* max_key, const char* unit) {
    bool lo = s.contains(min_key), hi = s.contains(max_key);
    std::string u = unit;
    if (lo && hi) return " of " + s[min_key].dump() + " to " + s[max_key].dump() + " " + u;
    if (lo) return " of at least " + s[min_key].dump() + " " + u;
    if (hi) return " of at most " + s[max_key].dump() + " " + u;
    return "";
}

std::string pattern_text(const json& s) {
    if (!s.contains("pattern") || !s["pattern"].is_string()) return "";
    return " matching the pattern " + s["pattern"].get<std::string>();
}

std::string join_path(const std::string& base, const std::string& key) {
    return base.empty() ? key : base + "." + key;
}

// Code points, as JSON Schema counts a string's length.
std::size_t code_points(const std::string& s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

// The value as an agent sent it, cut short: a 4 MiB `code` argument must not
// be echoed back.
std::string value_excerpt(const json& v) {
    constexpr std::size_t kMax = 80;
    std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > kMax) text = text.substr(0, kMax - 3) + "...";
    return text;
}

// --- From valijson's findings to agent-readable violations ---------------

// What one valijson error says. valijson reports a failing field once for
// each enclosing level ("Failed to validate item #0 in array."); those
// wrappers repeat what the field's own error says, so they are dropped.
enum class Finding { Wrapper, MissingProperty, UnknownProperty, Type, Enum, Const, Range, Length, Items, Pattern, Other };

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// valijson 1.0 (Debian 12) writes these descriptions in
// validation_visitor.hpp; tests/unit/test_schema.cpp pins each kind, so a
// reworded release shows up there rather than as a vaguer message.
Finding classify(std::string_view d) {
    for (std::string_view w : {"Failed to validate item #", "Failed to validate against schema associated with",
                               "Failed to validate against additional properties schema",
                               "Failed to validate against child schema #", "Failed to validate against dependent schema"})
        if (starts_with(d, w)) return Finding::Wrapper;
    if (starts_with(d, "Missing required property '")) return Finding::MissingProperty;
    if (starts_with(d, "Object contains a property that could not be validated")) return Finding::UnknownProperty;
    if (starts_with(d, "Value type not permitted")) return Finding::Type;
    if (starts_with(d, "Failed to match against any enum values")) return Finding::Enum;
    if (starts_with(d, "Failed to match expected value set by 'const'")) return Finding::Const;
    if (starts_with(d, "Expected number ")) return Finding::Range;
    if (starts_with(d, "String should be no ")) return Finding::Length;
    if (starts_with(d, "Array should contain no ")) return Finding::Items;
    if (starts_with(d, "Failed to match regex specified by 'pattern'")) return Finding::Pattern;
    return Finding::Other;
}

// The property name a description ends with: "Missing required property
// 'x'." The name is everything between `marker` and the closing "'.", so
// names with quotes in them survive.
std::string quoted_name(const std::string& d, std::string_view marker) {
    auto start = d.find(marker);
    if (start == std::string::npos || !d.ends_with("'.")) return "";
    start += marker.size();
    return start + 2 <= d.size() ? d.substr(start, d.size() - 2 - start) : "";
}

// A field a valijson context points at: its path as agents write it, the
// value there and the schema that applies to it.
struct Location {
    std::string path;
    const json* value = nullptr;
    json schema = json::object();
};

json subschema_for_key(const json& s, const std::string& key) {
    if (!s.is_object()) return json::object();
    if (s.contains("properties") && s["properties"].contains(key)) return s["properties"][key];
    if (s.contains("additionalProperties") && s["additionalProperties"].is_object()) return s["additionalProperties"];
    return json::object();
}

json subschema_for_index(const json& s, std::size_t i) {
    if (!s.is_object() || !s.contains("items")) return json::object();
    const json& items = s["items"];
    if (items.is_array()) return i < items.size() ? items[i] : s.value("additionalItems", json::object());
    return items;
}

// valijson's context is {"<root>", "[files]", "[0]", ...}; whether "[0]" is
// an index or a key named "0" depends on the value it walks through.
Location locate(const std::vector<std::string>& context, const json& root_value, const json& root_schema) {
    Location at{"", &root_value, root_schema};
    for (std::size_t i = 1; i < context.size() && at.value; ++i) {
        const std::string& token = context[i];
        std::string key = token.size() >= 2 ? token.substr(1, token.size() - 2) : token;
        if (at.value->is_array()) {
            std::size_t index = std::strtoull(key.c_str(), nullptr, 10);
            at.path += "[" + key + "]";
            at.schema = subschema_for_index(at.schema, index);
            at.value = index < at.value->size() ? &(*at.value)[index] : nullptr;
        } else if (at.value->is_object()) {
            at.path = join_path(at.path, key);
            at.schema = subschema_for_key(at.schema, key);
            auto it = at.value->find(key);
            at.value = it == at.value->end() ? nullptr : &*it;
        } else {
            at.value = nullptr;
        }
    }
    return at;
}

bool wants_number(const json& s) {
    const json t = s.value("type", json());
    auto numeric = [](const json& one) { return one == "integer" || one == "number"; };
    return numeric(t) || (t.is_array() && std::any_of(t.begin(), t.end(), numeric));
}

std::string got_text(Finding kind, const json& v, const json& schema) {
    // 1.5 for an integer is best shown as itself; 42 for a string by its type.
    if (kind == Finding::Type) return v.is_number() && wants_number(schema) ? v.dump() : article(type_of(v));
    if (kind == Finding::Length && v.is_string()) return std::to_string(code_points(v.get_ref<const std::string&>()));
    if (kind == Finding::Items && v.is_array()) return std::to_string(v.size()) + " items";
    return value_excerpt(v);
}

std::string lower_first(std::string s) {
    if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
    while (!s.empty() && s.back() == '.') s.pop_back();
    return s;
}

std::string known_fields(const json& s) {
    const json props = s.value("properties", json::object());
    std::string known;
    for (const auto& [k, _] : props.items()) known += (known.empty() ? "" : ", ") + k;
    return known.empty() ? "none" : known;
}

// Collects violations, one per field: a field that breaks several of its
// constraints (type and enum, say) is described once, by everything it must
// be. A wrong type describes the value best, so it wins.
class Report {
public:
    std::vector<SchemaViolation> take() { return std::move(out_); }

    void add(const valijson::ValidationResults::Error& e, const json& value, const json& schema) {
        const Finding kind = classify(e.description);
        switch (kind) {
            case Finding::Wrapper: return;
            case Finding::MissingProperty: return add_missing(locate(e.context, value, schema), quoted_name(e.description, "property '"));
            case Finding::UnknownProperty: return add_unknown(locate(e.context, value, schema), quoted_name(e.description, "constraints: '"));
            case Finding::Type:
            case Finding::Enum:
            case Finding::Const:
            case Finding::Range:
            case Finding::Length:
            case Finding::Items:
            case Finding::Pattern:
            case Finding::Other: return add_value(kind, locate(e.context, value, schema), e.description);
        }
    }

private:
    void add_missing(const Location& at, const std::string& name) {
        put(Finding::MissingProperty, join_path(at.path, name),
            "is required: it must be " + describe_schema(subschema_for_key(at.schema, name)));
    }

    // valijson names only the first unknown field of an object; an agent
    // should learn about all of them at once.
    void add_unknown(const Location& at, const std::string& named) {
        const json props = at.schema.value("properties", json::object());
        const bool by_pattern = at.schema.contains("patternProperties");
        if (!at.value || !at.value->is_object() || by_pattern) {
            put(Finding::UnknownProperty, join_path(at.path, named), "is not a known field (known: " + known_fields(at.schema) + ")");
            return;
        }
        for (const auto& [key, _] : at.value->items())
            if (!props.contains(key))
                put(Finding::UnknownProperty, join_path(at.path, key), "is not a known field (known: " + known_fields(at.schema) + ")");
    }

    void add_value(Finding kind, const Location& at, const std::string& description) {
        std::string message = "must be " + describe_schema(at.schema);
        if (kind == Finding::Other) message += "; " + lower_first(description);
        if (at.value) message += " (got " + got_text(kind, *at.value, at.schema) + ")";
        put(kind, at.path, std::move(message));
    }

    void put(Finding kind, const std::string& path, std::string message) {
        for (std::size_t i = 0; i < out_.size(); ++i) {
            if (out_[i].path != path) continue;
            if (kind == Finding::Type && kinds_[i] != Finding::Type) out_[i].message = std::move(message), kinds_[i] = kind;
            return;
        }
        out_.push_back({path, std::move(message)});
        kinds_.push_back(kind);
    }

    std::vector<SchemaViolation> out_;
    std::vector<Finding> kinds_;
};

// JSON Schema counts 5.0 as an integer; valijson asks nlohmann, which keeps
// 5.0 a float. Such values are checked as the integers they are.
bool has_integral_float(const json& v) {
    if (v.is_number_float()) return is_integral(v);
    if (v.is_structured())
        for (const auto& e : v)
            if (has_integral_float(e)) return true;
    return false;
}

void integral_floats_to_integers(json& v) {
    if (v.is_number_float() && is_integral(v)) {
        double d = v.get<double>();
        // Out of int64's range it stays a float, which no integer schema accepts.
        if (d >= -9.2e18 && d <= 9.2e18) v = static_cast<std::int64_t>(d);
        return;
    }
    if (v.is_structured())
        for (auto& e : v) integral_floats_to_integers(e);
}

}  // namespace

std::string SchemaViolation::what() const {
    return path.empty() ? message : "'" + path + "' " + message;
}

std::string describe_schema(const json& s) {
    if (!s.is_object()) return "any value";
    if (s.contains("enum")) {
        std::string list;
        for (const auto& e : s["enum"]) list += (list.empty() ? "" : ", ") + e.dump();
        return "one of " + list;
    }
    if (s.contains("const")) return "exactly " + s["const"].dump();
    for (const char* alternatives : {"anyOf", "oneOf"}) {
        if (!s.contains(alternatives) || !s[alternatives].is_array()) continue;
        std::string list;
        for (const auto& one : s[alternatives]) list += (list.empty() ? "" : " or ") + describe_schema(one);
        return list;
    }
    std::string type;
    if (s.contains("type") && s["type"].is_string()) type = s["type"].get<std::string>();
    if (s.contains("type") && s["type"].is_array()) {
        std::string list;
        for (const auto& t : s["type"]) list += (list.empty() ? "" : " or ") + article(t.get<std::string>());
        return list;
    }
    if (type == "integer" || type == "number") return article(type) + range_text(s);
    if (type == "string") return "a string" + length_text(s, "minLength", "maxLength", "characters") + pattern_text(s);
    if (type == "array") return "an array" + length_text(s, "minItems", "maxItems", "items");
    if (type.empty()) return "any value";
    return article(type);
}

SchemaChecker::SchemaChecker(json schema) : schema_(std::move(schema)), compiled_(std::make_unique<valijson::Schema>()) {
    try {
        valijson::SchemaParser parser;
        valijson::adapters::NlohmannJsonAdapter adapter(schema_);
        parser.populateSchema(adapter, *compiled_);
    } catch (const std::exception& e) {
        throw std::invalid_argument(std::string("not a usable JSON Schema: ") + e.what());
    }
}

SchemaChecker::~SchemaChecker() = default;
SchemaChecker::SchemaChecker(SchemaChecker&&) noexcept = default;
SchemaChecker& SchemaChecker::operator=(SchemaChecker&&) noexcept = default;

std::vector<SchemaViolation> SchemaChecker::check(const json& value) const {
    json normalized;
    const json* target = &value;
    if (has_integral_float(value)) {
        normalized = value;
        integral_floats_to_integers(normalized);
        target = &normalized;
    }
    // A Validator caches compiled regexes, so each check has its own: a
    // SchemaChecker is shared by concurrent tool calls.
    valijson::Validator validator;
    valijson::ValidationResults results;
    valijson::adapters::NlohmannJsonAdapter adapter(*target);
    if (validator.validate(*compiled_, adapter, &results)) return {};

    Report report;
    for (const auto& e : results) report.add(e, *target, schema_);
    std::vector<SchemaViolation> out = report.take();
    // valijson said no; never answer with an empty list, whatever it wrote.
    if (out.empty()) out.push_back({"", "does not match the schema"});
    return out;
}

std::vector<SchemaViolation> check_schema(const json& schema, const json& value) {
    return SchemaChecker(schema).check(value);
}

}  // namespace kiln::tools
