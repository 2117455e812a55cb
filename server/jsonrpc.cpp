#include "server/jsonrpc.hpp"

namespace kiln::jsonrpc {
namespace {

using nlohmann::json;

// Measures bracket nesting before parsing, outside strings, so a 10,000-deep
// document is refused in one linear pass instead of building a huge tree.
std::size_t nesting_depth(std::string_view text, std::size_t stop_at) {
    std::size_t depth = 0, max_depth = 0;
    bool in_string = false, escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') in_string = true;
        else if (c == '[' || c == '{') {
            max_depth = std::max(max_depth, ++depth);
            if (max_depth > stop_at) return max_depth;
        } else if ((c == ']' || c == '}') && depth > 0) --depth;
    }
    return max_depth;
}

bool valid_id(const json& id) {
    return id.is_string() || id.is_number_integer() || id.is_number_unsigned();
}

Invalid invalid_request(const json& id, const std::string& why) {
    return Invalid{make_error(valid_id(id) ? id : json(nullptr), kInvalidRequest, "Invalid Request: " + why)};
}

}  // namespace

Message classify(const json& v) {
    if (!v.is_object()) return invalid_request(nullptr, "a message must be a JSON object");
    json id = v.contains("id") ? v["id"] : json();
    auto jv = v.find("jsonrpc");
    if (jv == v.end() || *jv != "2.0") return invalid_request(id, "\"jsonrpc\" must be \"2.0\"");
    if (v.contains("id") && !valid_id(id))
        return invalid_request(nullptr, "\"id\" must be a string or an integer");

    auto method = v.find("method");
    if (method == v.end()) {
        // No method: a response to one of our requests.
        if (!v.contains("id")) return invalid_request(nullptr, "missing \"method\"");
        bool has_result = v.contains("result"), has_error = v.contains("error");
        if (has_result == has_error) return invalid_request(id, "a response needs exactly one of \"result\" and \"error\"");
        return Response{id, has_result ? v["result"] : json(), has_error ? v["error"] : json()};
    }
    if (!method->is_string()) return invalid_request(id, "\"method\" must be a string");
    json params = v.contains("params") ? v["params"] : json();
    if (v.contains("params") && !params.is_object() && !params.is_array())
        return invalid_request(id, "\"params\" must be an object or an array");
    if (!v.contains("id")) return Notification{method->get<std::string>(), params};
    return Request{id, method->get<std::string>(), params};
}

Parsed parse(std::string_view text, const Limits& limits) {
    Parsed out;
    if (nesting_depth(text, limits.max_depth) > limits.max_depth) {
        out.messages.push_back(Invalid{make_error(
            nullptr, kParseError, "Parse error: nesting deeper than " + std::to_string(limits.max_depth) + " levels")});
        return out;
    }
    // JSON has no place for a raw NUL, and nlohmann stops reading at one: what
    // follows it would be ignored rather than refused.
    if (text.find('\0') != std::string_view::npos) {
        out.messages.push_back(Invalid{make_error(nullptr, kParseError, "Parse error: a NUL byte is not valid JSON")});
        return out;
    }
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception& e) {
        // parse_error for bad syntax, out_of_range for a number that
        // overflows a double (1e400): both are texts Kiln cannot read.
        out.messages.push_back(Invalid{make_error(nullptr, kParseError, std::string("Parse error: ") + e.what())});
        return out;
    }
    if (doc.is_array()) {
        out.is_batch = true;
        if (doc.empty()) {
            out.is_batch = false;
            out.messages.push_back(invalid_request(nullptr, "empty batch"));
            return out;
        }
        for (const auto& element : doc) out.messages.push_back(classify(element));
        return out;
    }
    out.messages.push_back(classify(doc));
    return out;
}

json make_result(const json& id, json result) {
    return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json make_error(const json& id, int code, const std::string& message, json data) {
    json err = {{"code", code}, {"message", message}};
    if (!data.is_null()) err["data"] = std::move(data);
    return {{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(err)}};
}

json make_request(const json& id, const std::string& method, json params) {
    json out = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
    if (!params.is_null()) out["params"] = std::move(params);
    return out;
}

json make_notification(const std::string& method, json params) {
    json out = {{"jsonrpc", "2.0"}, {"method", method}};
    if (!params.is_null()) out["params"] = std::move(params);
    return out;
}

std::string serialize(const json& message) {
    return message.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace kiln::jsonrpc
