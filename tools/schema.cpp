#include "tools/schema.hpp"

#include <cmath>

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

bool matches_type(const std::string& type, const json& v) {
    if (type == "integer") return is_integral(v);
    if (type == "number") return v.is_number();
    if (type == "string") return v.is_string();
    if (type == "boolean") return v.is_boolean();
    if (type == "object") return v.is_object();
    if (type == "array") return v.is_array();
    if (type == "null") return v.is_null();
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
    bool lo = s.contains("minimum"), hi = s.contains("maximum");
    if (lo && hi) return " from " + number_text(s["minimum"]) + " to " + number_text(s["maximum"]);
    if (lo) return " of at least " + number_text(s["minimum"]);
    if (hi) return " of at most " + number_text(s["maximum"]);
    return "";
}

std::string length_text(const json& s, const char* min_key, const char* max_key, const char* unit) {
    bool lo = s.contains(min_key), hi = s.contains(max_key);
    std::string u = unit;
    if (lo && hi) return " of " + s[min_key].dump() + " to " + s[max_key].dump() + " " + u;
    if (lo) return " of at least " + s[min_key].dump() + " " + u;
    if (hi) return " of at most " + s[max_key].dump() + " " + u;
    return "";
}

std::string join_path(const std::string& base, const std::string& key) {
    return base.empty() ? key : base + "." + key;
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
    std::string type;
    if (s.contains("type") && s["type"].is_string()) type = s["type"].get<std::string>();
    if (s.contains("type") && s["type"].is_array()) {
        std::string list;
        for (const auto& t : s["type"]) list += (list.empty() ? "" : " or ") + article(t.get<std::string>());
        return list;
    }
    if (type == "integer" || type == "number") return article(type) + range_text(s);
    if (type == "string") return "a string" + length_text(s, "minLength", "maxLength", "characters");
    if (type == "array") return "an array" + length_text(s, "minItems", "maxItems", "items");
    if (type.empty()) return "any value";
    return article(type);
}

std::optional<SchemaViolation> check_schema(const json& s, const json& v, const std::string& path) {
    if (!s.is_object()) return std::nullopt;
    auto fail = [&](std::string msg) { return SchemaViolation{path, std::move(msg)}; };

    if (s.contains("type")) {
        const json& t = s["type"];
        bool ok = false;
        if (t.is_string()) ok = matches_type(t.get<std::string>(), v);
        else if (t.is_array())
            for (const auto& one : t) ok = ok || (one.is_string() && matches_type(one.get<std::string>(), v));
        if (!ok) return fail("must be " + describe_schema(s) + " (got " + article(type_of(v)) + ")");
    }
    if (s.contains("enum")) {
        bool found = false;
        for (const auto& e : s["enum"]) found = found || e == v;
        if (!found) return fail("must be " + describe_schema(s) + " (got " + v.dump() + ")");
    }
    if (s.contains("const") && s["const"] != v) return fail("must be exactly " + s["const"].dump());

    if (v.is_number()) {
        double d = v.get<double>();
        if ((s.contains("minimum") && d < s["minimum"].get<double>()) ||
            (s.contains("maximum") && d > s["maximum"].get<double>()))
            return fail("must be " + describe_schema(s) + " (got " + v.dump() + ")");
    }
    if (v.is_string()) {
        // Lengths count code points, as JSON Schema does, not bytes.
        const auto& str = v.get_ref<const std::string&>();
        std::size_t len = 0;
        for (unsigned char c : str) len += (c & 0xC0) != 0x80;
        if ((s.contains("minLength") && len < s["minLength"].get<std::size_t>()) ||
            (s.contains("maxLength") && len > s["maxLength"].get<std::size_t>()))
            return fail("must be " + describe_schema(s) + " (got " + std::to_string(len) + ")");
        if (s.contains("pattern"))
            return fail("cannot be checked: \"pattern\" is not supported by Kiln's schema checker");
    }
    if (v.is_array()) {
        if ((s.contains("minItems") && v.size() < s["minItems"].get<std::size_t>()) ||
            (s.contains("maxItems") && v.size() > s["maxItems"].get<std::size_t>()))
            return fail("must be " + describe_schema(s) + " (got " + std::to_string(v.size()) + " items)");
        if (s.contains("items"))
            for (std::size_t i = 0; i < v.size(); ++i)
                if (auto bad = check_schema(s["items"], v[i], path + "[" + std::to_string(i) + "]")) return bad;
    }
    if (v.is_object()) {
        if (s.contains("required"))
            for (const auto& r : s["required"])
                if (!v.contains(r.get<std::string>()))
                    return SchemaViolation{join_path(path, r.get<std::string>()),
                                           "is required: it must be " +
                                               describe_schema(s.value("properties", json::object()).value(r.get<std::string>(), json::object()))};
        const json props = s.value("properties", json::object());
        for (const auto& [key, val] : v.items()) {
            if (props.contains(key)) {
                if (auto bad = check_schema(props[key], val, join_path(path, key))) return bad;
            } else if (s.contains("additionalProperties") && s["additionalProperties"] == false) {
                std::string known;
                for (const auto& [k, _] : props.items()) known += (known.empty() ? "" : ", ") + k;
                return SchemaViolation{join_path(path, key), "is not a known field (known: " + known + ")"};
            } else if (s.contains("additionalProperties") && s["additionalProperties"].is_object()) {
                if (auto bad = check_schema(s["additionalProperties"], val, join_path(path, key))) return bad;
            }
        }
    }
    return std::nullopt;
}

}  // namespace kiln::tools
