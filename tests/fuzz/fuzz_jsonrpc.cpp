// libFuzzer entry for the JSON-RPC message classifier (jsonrpc::parse: the
// nesting check, then parse and classify). Whatever the bytes:
//  - nothing is thrown out of it;
//  - every invalid input gets an error reply that is valid JSON-RPC (version,
//    an id that is null, a string or an integer, an error with a standard
//    code and a message) and that serializes to JSON that parses back;
//  - it agrees with nlohmann on what is JSON: a parse error (-32700) exactly
//    when the text is not JSON or nests deeper than the limit;
//  - a request's id is echoed back unchanged through a serialized reply.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "server/jsonrpc.hpp"

namespace {

using nlohmann::json;
namespace rpc = kiln::jsonrpc;

constexpr std::size_t kMaxDepth = 8;  // small, so the fuzzer reaches it often

[[noreturn]] void fail(const char* what, const json& detail = nullptr) {
    std::fprintf(stderr, "fuzz_jsonrpc: %s %s\n", what, rpc::serialize(detail).c_str());
    std::abort();
}

bool valid_id(const json& id) { return id.is_string() || id.is_number_integer() || id.is_number_unsigned(); }

// A reply must survive the trip to the client: serialized, parsed back, equal
// to itself apart from invalid UTF-8, which serialize() replaces.
json round_trip(const json& message) {
    try {
        return json::parse(rpc::serialize(message));
    } catch (const std::exception&) {
        fail("a reply does not serialize to JSON", message);
    }
}

void check_error_reply(const json& reply) {
    const json back = round_trip(reply);
    if (!back.is_object() || back.value("jsonrpc", json()) != "2.0") fail("error reply without jsonrpc 2.0", back);
    if (!back.contains("id") || !(back["id"].is_null() || valid_id(back["id"]))) fail("error reply with a bad id", back);
    if (back.contains("result")) fail("error reply with a result", back);
    const json err = back.value("error", json());
    if (!err.is_object() || !err.value("message", json()).is_string()) fail("error reply without error.message", back);
    const json code = err.value("code", json());
    if (code != rpc::kParseError && code != rpc::kInvalidRequest) fail("error reply with an unexpected code", back);
}

void check_message(const rpc::Message& m) {
    if (const auto* bad = std::get_if<rpc::Invalid>(&m)) return check_error_reply(bad->reply);
    if (const auto* req = std::get_if<rpc::Request>(&m)) {
        if (!valid_id(req->id)) fail("a request with a bad id", req->id);
        if (!(req->params.is_null() || req->params.is_object() || req->params.is_array()))
            fail("a request with bad params", req->params);
        const json reply = round_trip(rpc::make_result(req->id, json::object()));
        if (reply["id"] != req->id) fail("a request id does not come back unchanged", req->id);
        return;
    }
    if (const auto* note = std::get_if<rpc::Notification>(&m)) {
        if (!(note->params.is_null() || note->params.is_object() || note->params.is_array()))
            fail("a notification with bad params", note->params);
        return;
    }
    const auto& resp = std::get<rpc::Response>(m);
    if (!valid_id(resp.id)) fail("a response with a bad id", resp.id);
}

bool is_parse_error(const rpc::Message& m) {
    const auto* bad = std::get_if<rpc::Invalid>(&m);
    return bad && bad->reply["error"]["code"] == rpc::kParseError;
}

std::size_t depth_of(const json& v) {
    if (!v.is_structured() || v.empty()) return v.is_structured() ? 1 : 0;
    std::size_t deepest = 0;
    for (const auto& e : v) deepest = std::max(deepest, depth_of(e));
    return deepest + 1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    rpc::Parsed parsed;
    try {
        parsed = rpc::parse(text, rpc::Limits{kMaxDepth});
    } catch (const std::exception& e) {
        fail("parse threw", e.what());
    }
    if (parsed.messages.empty()) fail("no message and no error");
    for (const auto& m : parsed.messages) check_message(m);

    // nlohmann's own verdict, with the tree depth counted on the parsed value.
    // nlohmann stops at a NUL; JSON has no place for one.
    json doc = json::parse(text, nullptr, false);
    const bool json_ok = !doc.is_discarded() && text.find('\0') == std::string_view::npos;
    const bool too_deep = json_ok && depth_of(doc) > kMaxDepth;
    const bool parse_error = parsed.messages.size() == 1 && is_parse_error(parsed.messages.front());
    if (parse_error != (!json_ok || too_deep)) fail("parse error verdict differs from nlohmann's", json_ok);
    if (json_ok && !too_deep && doc.is_array() && !doc.empty() &&
        (!parsed.is_batch || parsed.messages.size() != doc.size()))
        fail("a batch does not give one message per element");
    return 0;
}
