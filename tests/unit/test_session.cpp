#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "server/mcp_session.hpp"
#include "tools/debug_tools.hpp"

using namespace kiln;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Collects what the session sends, as a client would see it.
class Client {
public:
    explicit Client(server::SessionOptions options = {}, std::function<void(tools::Registry&)> more_tools = {}) {
        tools::register_debug_tools(registry_);
        if (more_tools) more_tools(registry_);
        session_ = std::make_unique<server::Session>(options, registry_, [this](const json& m, const std::optional<json>& related) {
            std::lock_guard lock(mutex_);
            sent_.push_back(m);
            related_.push_back(related);
            cv_.notify_all();
        }, "test");
    }
    void send(const json& m) { session_->handle_text(m.dump()); }
    void raw(const std::string& text) { session_->handle_text(text); }

    json request(const std::string& method, json params = nullptr, json id = nullptr) {
        if (id.is_null()) id = next_id_++;
        json m = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
        if (!params.is_null()) m["params"] = params;
        send(m);
        return wait_for([&](const json& r) { return r.is_object() && r.contains("id") && r["id"] == id && !r.contains("method"); });
    }
    void initialize(const std::string& version = "2025-11-25") {
        json r = request("initialize", {{"protocolVersion", version}, {"capabilities", json::object()},
                                        {"clientInfo", {{"name", "unit"}, {"version", "1"}}}});
        REQUIRE(r.contains("result"));
        send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
    }
    template <class Pred>
    json wait_for(Pred pred, std::chrono::milliseconds timeout = 5s) {
        std::unique_lock lock(mutex_);
        json found;
        bool ok = cv_.wait_for(lock, timeout, [&] {
            for (const auto& m : sent_)
                if (pred(m)) {
                    found = m;
                    return true;
                }
            return false;
        });
        REQUIRE_MESSAGE(ok, "no matching message arrived");
        return found;
    }
    std::vector<json> sent() {
        std::lock_guard lock(mutex_);
        return sent_;
    }
    // The request each sent message was said to belong to, in sending order.
    std::vector<std::optional<json>> related() {
        std::lock_guard lock(mutex_);
        return related_;
    }
    server::Session& session() { return *session_; }

private:
    tools::Registry registry_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<json> sent_;
    std::vector<std::optional<json>> related_;
    std::unique_ptr<server::Session> session_;
    int next_id_ = 1;
};

}  // namespace

TEST_CASE("version negotiation answers the client's version when supported") {
    CHECK(server::negotiate_version("2025-11-25") == "2025-11-25");
    CHECK(server::negotiate_version("2025-06-18") == "2025-06-18");
    CHECK(server::negotiate_version("2025-03-26") == "2025-03-26");
    CHECK(server::negotiate_version("2024-11-05") == "2025-11-25");
    CHECK(server::negotiate_version("garbage") == "2025-11-25");

    Client c;
    json r = c.request("initialize", {{"protocolVersion", "2025-06-18"}, {"capabilities", json::object()}, {"clientInfo", {{"name", "x"}, {"version", "0"}}}});
    CHECK(r["result"]["protocolVersion"] == "2025-06-18");
    CHECK(r["result"]["serverInfo"]["name"] == "kiln");
    CHECK(r["result"]["capabilities"].contains("tools"));
    CHECK(r["result"]["capabilities"].contains("logging"));
    CHECK(c.session().info().client_name == "x");
    // A second initialize is refused.
    r = c.request("initialize", {{"protocolVersion", "2025-06-18"}});
    CHECK(r["error"]["code"] == -32600);
}

TEST_CASE("initialize with malformed params is -32602") {
    Client c;
    CHECK(c.request("initialize", json::object())["error"]["code"] == -32602);
    CHECK(c.request("initialize", {{"protocolVersion", 5}})["error"]["code"] == -32602);
}

TEST_CASE("requests before initialize are refused, ping is not") {
    Client c;
    CHECK(c.request("tools/list")["error"]["code"] == -32600);
    CHECK(c.request("ping").contains("result"));
}

TEST_CASE("method not found and invalid params") {
    Client c;
    c.initialize();
    CHECK(c.request("resources/nope")["error"]["code"] == -32601);
    CHECK(c.request("tools/call", {{"arguments", json::object()}})["error"]["code"] == -32602);
    CHECK(c.request("tools/call", {{"name", "debug_echo"}, {"arguments", "x"}})["error"]["code"] == -32602);
    json r = c.request("tools/call", {{"name", "no_such_tool"}});
    CHECK(r["error"]["code"] == -32602);
    CHECK(r["error"]["message"].get<std::string>().find("debug_echo") != std::string::npos);
    CHECK(c.request("logging/setLevel", {{"level", "loud"}})["error"]["code"] == -32602);
    c.raw(R"({"jsonrpc":"2.0","id":99,"method":"ping","params":[1]})");
    CHECK(c.wait_for([](const json& m) { return m.value("id", json()) == 99; })["error"]["code"] == -32602);
}

TEST_CASE("tools/list paginates with an opaque cursor") {
    server::SessionOptions o;
    o.page_size = 1;
    Client c(o);
    c.initialize();
    std::vector<std::string> names;
    json cursor;
    for (int page = 0; page < 10; ++page) {
        json params = cursor.is_null() ? json::object() : json{{"cursor", cursor}};
        json r = c.request("tools/list", params);
        REQUIRE(r.contains("result"));
        CHECK(r["result"]["tools"].size() == 1);
        for (const auto& t : r["result"]["tools"]) {
            names.push_back(t["name"]);
            CHECK(t.contains("inputSchema"));
            CHECK(t["annotations"].contains("readOnlyHint"));
        }
        if (!r["result"].contains("nextCursor")) break;
        cursor = r["result"]["nextCursor"];
    }
    CHECK(names == std::vector<std::string>{"debug_echo", "debug_sleep", "debug_fail", "debug_log"});
    CHECK(c.request("tools/list", {{"cursor", "o:999"}})["error"]["code"] == -32602);
    CHECK(c.request("tools/list", {{"cursor", "bogus"}})["error"]["code"] == -32602);
}

TEST_CASE("bad arguments are an isError result naming the field") {
    Client c;
    c.initialize();
    json r = c.request("tools/call", {{"name", "debug_echo"}, {"arguments", {{"text", "hi"}, {"repeat", 11}}}});
    CHECK(r["result"]["isError"] == true);
    std::string text = r["result"]["content"][0]["text"];
    CHECK(text.find("'repeat' must be an integer from 1 to 10 (got 11)") != std::string::npos);

    r = c.request("tools/call", {{"name", "debug_fail"}, {"arguments", json::object()}});
    CHECK(r["result"]["isError"] == true);
    CHECK(r["result"]["content"][0]["text"].get<std::string>().find("deliberate failure") != std::string::npos);

    r = c.request("tools/call", {{"name", "debug_echo"}, {"arguments", {{"text", "ab"}, {"repeat", 2}}}});
    CHECK(r["result"]["isError"] == false);
    CHECK(r["result"]["structuredContent"]["text"] == "abab");
}

TEST_CASE("a slow call does not block ping, and cancellation ends it without a response") {
    Client c;
    c.initialize();
    c.send({{"jsonrpc", "2.0"}, {"id", "slow"}, {"method", "tools/call"}, {"params", {{"name", "debug_sleep"}, {"arguments", {{"seconds", 30}}}}}});
    auto start = std::chrono::steady_clock::now();
    CHECK(c.request("ping").contains("result"));
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(c.session().inflight() == 1);
    c.send({{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", "slow"}, {"reason", "test"}}}});
    for (int i = 0; i < 200 && c.session().inflight() > 0; ++i) std::this_thread::sleep_for(10ms);
    CHECK(c.session().inflight() == 0);
    for (const auto& m : c.sent()) CHECK(m.value("id", json()) != "slow");
}

TEST_CASE("the in-flight cap refuses extra calls with a clear error") {
    server::SessionOptions o;
    o.max_inflight_calls = 1;
    Client c(o);
    c.initialize();
    c.send({{"jsonrpc", "2.0"}, {"id", 100}, {"method", "tools/call"}, {"params", {{"name", "debug_sleep"}, {"arguments", {{"seconds", 30}}}}}});
    for (int i = 0; i < 100 && c.session().inflight() == 0; ++i) std::this_thread::sleep_for(10ms);
    json r = c.request("tools/call", {{"name", "debug_echo"}, {"arguments", {{"text", "x"}}}});
    CHECK(r["result"]["isError"] == true);
    CHECK(r["result"]["content"][0]["text"].get<std::string>().find("server.max_inflight_calls") != std::string::npos);
    auto start = std::chrono::steady_clock::now();
    c.session().shutdown();  // ends the 30 s sleep at once
    CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE("progress notifications carry the request's token and increase") {
    Client c;
    c.initialize();
    json r = c.request("tools/call", {{"name", "debug_sleep"}, {"arguments", {{"seconds", 0.2}, {"steps", 4}}}, {"_meta", {{"progressToken", 42}}}});
    CHECK(r["result"]["isError"] == false);
    std::vector<double> seen;
    for (const auto& m : c.sent())
        if (m.value("method", "") == "notifications/progress") {
            CHECK(m["params"]["progressToken"] == 42);
            seen.push_back(m["params"]["progress"]);
        }
    CHECK(seen == std::vector<double>{1, 2, 3, 4});
}

// The HTTP transport routes by this relation: a call's progress, logs and
// result go on that call's POST stream, nothing else does.
TEST_CASE("every message names the request it belongs to, batches all of theirs") {
    Client c;
    c.initialize();
    CHECK(c.request("logging/setLevel", {{"level", "debug"}}, "lvl").contains("result"));
    c.request("tools/call", {{"name", "debug_sleep"}, {"arguments", {{"seconds", 0.1}, {"steps", 2}}}, {"_meta", {{"progressToken", "t"}}}}, "sleepy");
    c.request("tools/call", {{"name", "debug_log"}, {"arguments", {{"level", "warning"}, {"message", "hello"}}}}, 77);
    auto sent = c.sent();
    auto related = c.related();
    REQUIRE(sent.size() == related.size());
    int progress = 0, logs = 0;
    for (std::size_t i = 0; i < sent.size(); ++i) {
        REQUIRE(related[i].has_value());
        std::string method = sent[i].value("method", "");
        if (method == "notifications/progress") {
            ++progress;
            CHECK(*related[i] == "sleepy");
        } else if (method == "notifications/message") {
            ++logs;
            CHECK(*related[i] == 77);
        } else {
            CHECK(*related[i] == sent[i]["id"]);  // a response belongs to its own request
        }
    }
    CHECK(progress == 2);
    CHECK(logs == 1);

    Client old;
    old.initialize("2025-03-26");
    old.raw(R"([{"jsonrpc":"2.0","id":"a","method":"ping"},{"jsonrpc":"2.0","id":9,"method":"ping"}])");
    old.wait_for([](const json& m) { return m.is_array(); });
    CHECK(old.related().back() == std::optional<json>(json::array({"a", 9})));
}

TEST_CASE("logging/setLevel filters notifications/message") {
    Client c;
    c.initialize();
    auto log = [&](const char* level) {
        return c.request("tools/call", {{"name", "debug_log"}, {"arguments", {{"level", level}, {"message", std::string("m-") + level}}}});
    };
    auto count_messages = [&](const std::string& data) {
        int n = 0;
        for (const auto& m : c.sent())
            if (m.value("method", "") == "notifications/message" && m["params"]["data"] == data) ++n;
        return n;
    };
    log("info");
    CHECK(count_messages("m-info") == 0);  // default threshold is warning
    CHECK(c.request("logging/setLevel", {{"level", "debug"}}).contains("result"));
    log("debug");
    CHECK(count_messages("m-debug") == 1);
    CHECK(c.request("logging/setLevel", {{"level", "error"}}).contains("result"));
    log("warning");
    log("critical");
    CHECK(count_messages("m-warning") == 0);
    CHECK(count_messages("m-critical") == 1);
}

TEST_CASE("batches: refused after 2025-06-18, answered as an array for 2025-03-26") {
    Client modern;
    modern.initialize("2025-11-25");
    modern.raw(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])");
    json r = modern.wait_for([](const json& m) { return m.is_object() && m.contains("error"); });
    CHECK(r["error"]["code"] == -32600);

    Client old;
    old.initialize("2025-03-26");
    old.raw(R"([{"jsonrpc":"2.0","id":"a","method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"},{"jsonrpc":"2.0","id":"b","method":"nope"},7])");
    json batch = old.wait_for([](const json& m) { return m.is_array(); });
    REQUIRE(batch.size() == 3);
    CHECK(batch[0]["id"] == "a");
    CHECK(batch[1]["error"]["code"] == -32601);
    CHECK(batch[2]["error"]["code"] == -32600);
}

TEST_CASE("oversized messages get an error and the session goes on") {
    Client c;
    c.session().reject_oversized(10'000'000);
    json r = c.wait_for([](const json& m) { return m.contains("error"); });
    CHECK(r["error"]["code"] == -32600);
    CHECK(r["error"]["message"].get<std::string>().find("server.max_message_bytes") != std::string::npos);
    CHECK(c.request("ping").contains("result"));
}

TEST_CASE("resources are declared only when there are some, and read by uri") {
    Client plain;
    json r = plain.request("initialize", {{"protocolVersion", "2025-11-25"}});
    CHECK_FALSE(r["result"]["capabilities"].contains("resources"));
    CHECK(plain.request("resources/list")["error"]["code"] == -32601);

    tools::ResourceSet set;
    set.add({"kiln://policy", "policy", "Policy", "the policy", "application/json",
             [](const tools::SessionInfo& s) { return json{{"session", s.id}}; }});
    server::SessionOptions o;
    o.resources = &set;
    Client c(o);
    r = c.request("initialize", {{"protocolVersion", "2025-11-25"}});
    CHECK(r["result"]["capabilities"].contains("resources"));
    r = c.request("resources/list");
    CHECK(r["result"]["resources"][0]["uri"] == "kiln://policy");
    r = c.request("resources/read", {{"uri", "kiln://policy"}});
    CHECK(json::parse(r["result"]["contents"][0]["text"].get<std::string>())["session"] == "test");
    r = c.request("resources/read", {{"uri", "kiln://nope"}});
    CHECK(r["error"]["code"] == -32002);
    CHECK(r["error"]["message"].get<std::string>().find("kiln://policy") != std::string::npos);
    CHECK(c.request("resources/read", json::object())["error"]["code"] == -32602);
}

// ---- The stateless era (MCP 2026-07-28) ----

namespace {

json modern_meta(json capabilities = json::object()) {
    return {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
            {"io.modelcontextprotocol/clientInfo", {{"name", "unit-modern"}, {"version", "2"}}},
            {"io.modelcontextprotocol/clientCapabilities", std::move(capabilities)}};
}

json with_meta(json params, json meta = modern_meta()) {
    params["_meta"] = std::move(meta);
    return params;
}

// A tool that needs the client's input the way run_code's approval does:
// the first attempt leaves an InputRequiredResult, the retry's answer
// counts only with the state that came with it.
class AskTool : public tools::Tool {
public:
    const tools::ToolDef& def() const override {
        static const tools::ToolDef d{"unit_ask", "Ask", "Asks for a word, bound to `topic`.",
                                      {{"type", "object"}, {"properties", {{"topic", {{"type", "string"}}}}}}};
        return d;
    }
    tools::ToolResult call(const json& arguments, const tools::CallContext& ctx) override {
        tools::RoundTrip* rt = ctx.round_trip;
        if (!rt) return tools::ToolResult::error("not a stateless call");
        std::string binding = "unit_ask " + arguments.value("topic", "");
        if (rt->request_state.empty() || !rt->input_responses.is_object()) {
            rt->input_required = {{"inputRequests", {{"word", {{"method", "elicitation/create"}, {"params", {{"message", "a word?"}}}}}}},
                                  {"requestState", rt->mint(binding)}};
            return {"asked", nullptr, false, {}};
        }
        if (auto refusal = rt->redeem(binding)) {
            rt->refused = *refusal;
            return tools::ToolResult::error("refused");
        }
        return {"got " + rt->input_responses["word"]["content"].value("word", ""), nullptr, false, {}};
    }
};

void add_ask_tool(tools::Registry& r) { r.add(std::make_unique<AskTool>()); }

}  // namespace

TEST_CASE("stateless: a request with _meta is served without initialize, and the connection stays uninitialized") {
    Client c;
    json r = c.request("tools/list", with_meta(json::object()));
    REQUIRE(r.contains("result"));
    CHECK(r["result"]["resultType"] == "complete");
    CHECK(r["result"]["tools"].size() >= 4);
    CHECK(r["result"]["ttlMs"].get<std::int64_t>() >= 0);
    CHECK(r["result"]["cacheScope"] == "public");
    CHECK(r["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "kiln");
    // A legacy request still needs initialize: the stateless one opened nothing.
    CHECK(c.request("tools/list")["error"]["code"] == -32600);
    // And once a connection opened with initialize, it is legacy: no discover.
    c.initialize();
    CHECK(c.request("server/discover", with_meta(json::object()))["error"]["code"] == -32601);
    json legacy = c.request("tools/list");
    CHECK_FALSE(legacy["result"].contains("resultType"));
}

TEST_CASE("stateless: server/discover names both eras, the capabilities and cache hints") {
    Client c;
    json r = c.request("server/discover", with_meta(json::object()));
    REQUIRE(r.contains("result"));
    const json& d = r["result"];
    CHECK(d["supportedVersions"] == json({"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"}));
    CHECK(d["capabilities"].contains("tools"));
    CHECK(d["resultType"] == "complete");
    CHECK(d["cacheScope"] == "public");
    CHECK(d["ttlMs"].is_number_integer());
    CHECK(d["_meta"]["io.modelcontextprotocol/serverInfo"]["version"].is_string());
}

TEST_CASE("stateless: _meta without a version or capabilities is -32602, an unknown version -32022") {
    Client c;
    CHECK(c.request("server/discover", json::object())["error"]["code"] == -32602);
    json meta = modern_meta();
    meta.erase("io.modelcontextprotocol/clientCapabilities");
    json r = c.request("tools/list", with_meta(json::object(), meta));
    CHECK(r["error"]["code"] == -32602);
    CHECK(r["error"]["message"].get<std::string>().find("clientCapabilities") != std::string::npos);
    meta = modern_meta();
    meta["io.modelcontextprotocol/protocolVersion"] = "1900-01-01";
    r = c.request("tools/list", with_meta(json::object(), meta), 77);
    CHECK(r["id"] == 77);
    CHECK(r["error"]["code"] == -32022);
    CHECK(r["error"]["data"]["requested"] == "1900-01-01");
    CHECK(r["error"]["data"]["supported"][0] == "2026-07-28");
    // A 2025 version is not per-request: it needs initialize.
    meta["io.modelcontextprotocol/protocolVersion"] = "2025-11-25";
    CHECK(c.request("tools/list", with_meta(json::object(), meta))["error"]["code"] == -32022);
    meta = modern_meta();
    meta["io.modelcontextprotocol/logLevel"] = "loud";
    CHECK(c.request("tools/list", with_meta(json::object(), meta))["error"]["code"] == -32602);
}

TEST_CASE("stateless: removed and unknown methods are -32601") {
    Client c;
    for (const char* m : {"ping", "logging/setLevel", "resources/subscribe", "initialize", "nope/nope"})
        CHECK_MESSAGE(c.request(m, with_meta(json::object()))["error"]["code"] == -32601, m);
}

TEST_CASE("stateless: tools/call answers with resultType and logs only at the request's logLevel") {
    Client c;
    auto count_messages = [&](const std::string& data) {
        int n = 0;
        for (const auto& m : c.sent())
            if (m.value("method", "") == "notifications/message" && m["params"]["data"] == data) ++n;
        return n;
    };
    json call = {{"name", "debug_log"}, {"arguments", {{"level", "error"}, {"message", "quiet"}}}};
    json r = c.request("tools/call", with_meta(call));
    CHECK(r["result"]["resultType"] == "complete");
    CHECK(r["result"]["isError"] == false);
    CHECK(count_messages("quiet") == 0);
    json meta = modern_meta();
    meta["io.modelcontextprotocol/logLevel"] = "warning";
    call["arguments"]["message"] = "loud";
    c.request("tools/call", with_meta(call, meta));
    CHECK(count_messages("loud") == 1);
}

TEST_CASE("stateless: each call gets a workspace of its own, released when it ends") {
    std::mutex m;
    std::vector<std::string> closed;
    server::SessionOptions options;
    options.on_close = [&](const std::string& id) {
        std::lock_guard lock(m);
        closed.push_back(id);
    };
    Client c(options);
    json call = {{"name", "debug_echo"}, {"arguments", {{"text", "x"}}}};
    c.request("tools/call", with_meta(call));
    c.request("tools/call", with_meta(call));
    std::lock_guard lock(m);
    REQUIRE(closed.size() == 2);
    CHECK(closed[0] != closed[1]);
    CHECK(closed[0].rfind("req-", 0) == 0);
}

TEST_CASE("stateless: input is asked through InputRequiredResult and answered once with its requestState") {
    Client c({}, add_ask_tool);
    json call = {{"name", "unit_ask"}, {"arguments", {{"topic", "colour"}}}};
    json first = c.request("tools/call", with_meta(call));
    REQUIRE(first.contains("result"));
    const json& ir = first["result"];
    CHECK(ir["resultType"] == "input_required");
    CHECK(ir["inputRequests"]["word"]["method"] == "elicitation/create");
    REQUIRE(ir["requestState"].is_string());
    CHECK_FALSE(ir.contains("content"));  // an interim result, not a CallToolResult
    // No request went to the client: this era has none.
    for (const auto& m : c.sent()) CHECK_FALSE((m.contains("method") && m.contains("id")));

    json retry = call;
    retry["inputResponses"] = {{"word", {{"action", "accept"}, {"content", {{"word", "teal"}}}}}};
    retry["requestState"] = ir["requestState"];
    json done = c.request("tools/call", with_meta(retry));
    CHECK(done["result"]["resultType"] == "complete");
    CHECK(done["result"]["content"][0]["text"] == "got teal");
    // The same state again: a replay.
    json replay = c.request("tools/call", with_meta(retry));
    CHECK(replay["error"]["code"] == -32602);
    CHECK(replay["error"]["message"].get<std::string>().find("already used") != std::string::npos);
    // A state for another topic does not answer this one.
    json other = c.request("tools/call", with_meta({{"name", "unit_ask"}, {"arguments", {{"topic", "size"}}}}));
    retry["requestState"] = other["result"]["requestState"];
    json crossed = c.request("tools/call", with_meta(retry));
    CHECK(crossed["error"]["message"].get<std::string>().find("another request") != std::string::npos);
    // A malformed retry is refused before the tool runs.
    retry["requestState"] = 5;
    CHECK(c.request("tools/call", with_meta(retry))["error"]["code"] == -32602);
}

TEST_CASE("stateless: subscriptions/listen acknowledges first, and ends silently when cancelled") {
    Client c;
    c.send({{"jsonrpc", "2.0"}, {"id", "sub-1"}, {"method", "subscriptions/listen"},
            {"params", with_meta({{"notifications", {{"toolsListChanged", true}}}})}});
    json ack = c.wait_for([](const json& m) { return m.value("method", "") == "notifications/subscriptions/acknowledged"; });
    CHECK(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "sub-1");
    // Kiln's lists never change: it agrees to no notification type.
    CHECK(ack["params"]["notifications"] == json::object());
    c.send({{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", "sub-1"}}}});
    std::this_thread::sleep_for(200ms);
    CHECK(c.session().inflight() == 0);
    for (const auto& m : c.sent()) CHECK_FALSE((m.contains("id") && m["id"] == "sub-1"));
}

TEST_CASE("stateless: a listen stream open at shutdown gets its graceful closing result") {
    Client c;
    c.send({{"jsonrpc", "2.0"}, {"id", 9}, {"method", "subscriptions/listen"}, {"params", with_meta(json::object())}});
    c.wait_for([](const json& m) { return m.value("method", "") == "notifications/subscriptions/acknowledged"; });
    c.session().shutdown();
    json end = c.wait_for([](const json& m) { return m.contains("id") && m["id"] == 9; });
    CHECK(end["result"]["resultType"] == "complete");
    CHECK(end["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 9);
}

TEST_CASE("stateless: notifications/cancelled stops a call, which then answers nothing (stdio's cancellation)") {
    Client c;
    c.send({{"jsonrpc", "2.0"}, {"id", "slow"}, {"method", "tools/call"},
            {"params", with_meta({{"name", "debug_sleep"}, {"arguments", {{"seconds", 30}}}})}});
    std::this_thread::sleep_for(100ms);
    auto started = std::chrono::steady_clock::now();
    c.send({{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", "slow"}}}});
    while (c.session().inflight() > 0 && std::chrono::steady_clock::now() - started < 5s) std::this_thread::sleep_for(10ms);
    CHECK(c.session().inflight() == 0);
    for (const auto& m : c.sent()) CHECK_FALSE((m.contains("id") && m["id"] == "slow"));
}

TEST_CASE("stateless: a call refused at the in-flight cap still says resultType") {
    server::SessionOptions o;
    o.max_inflight_calls = 1;
    Client c(o);
    c.send({{"jsonrpc", "2.0"}, {"id", 100}, {"method", "tools/call"},
            {"params", with_meta({{"name", "debug_sleep"}, {"arguments", {{"seconds", 30}}}})}});
    for (int i = 0; i < 100 && c.session().inflight() == 0; ++i) std::this_thread::sleep_for(10ms);
    json r = c.request("tools/call", with_meta({{"name", "debug_echo"}, {"arguments", {{"text", "x"}}}}));
    CHECK(r["result"]["isError"] == true);
    CHECK(r["result"]["resultType"] == "complete");
    c.session().shutdown();
}
