#include "security/policy.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <type_traits>

#include "common/units.hpp"
#include "threat_model/codegen.hpp"

namespace kiln::security {

namespace {

using threat_model::Level;

Result<Decision> parse_decision(const std::string& v) {
    if (v == "allow") return Decision::Allow;
    if (v == "ask") return Decision::Ask;
    if (v == "deny") return Decision::Deny;
    return make_error("parse decision", "'" + v + "' is not one of allow, ask, deny");
}

Result<bool> parse_bool(const std::string& v) {
    if (v == "true" || v == "yes" || v == "on") return true;
    if (v == "false" || v == "no" || v == "off") return false;
    return make_error("parse bool", "'" + v + "' is not true or false");
}

Result<double> parse_cpus(const std::string& v) {
    try {
        std::size_t used = 0;
        double d = std::stod(v, &used);
        if (used == v.size() && d > 0 && d <= 1024) return d;
    } catch (const std::exception&) {
    }
    return make_error("parse cpus", "'" + v + "' is not a positive number of CPUs, e.g. 0.5 or 2");
}

Result<unsigned> parse_count(const std::string& v) {
    try {
        std::size_t used = 0;
        unsigned long n = std::stoul(v, &used);
        if (used == v.size() && n > 0 && n <= 1'000'000) return static_cast<unsigned>(n);
    } catch (const std::exception&) {
    }
    return make_error("parse count", "'" + v + "' is not a positive integer");
}

Result<std::string> parse_name(const std::string& v) {
    if (!v.empty()) return v;
    return make_error("parse name", "must not be empty");
}

// How each type of field is read from YAML, shown in to_json() and written
// as C++ for the generated presets: one overload set per type, so a field's
// row in the table below names only its keys and its member.
Result<std::string> read(const YAML::Node& n, std::string*) { return parse_name(n.Scalar()); }
Result<bool> read(const YAML::Node& n, bool*) { return parse_bool(n.Scalar()); }
Result<Level> read(const YAML::Node& n, Level*) { return threat_model::parse_level(n.Scalar()); }
Result<Decision> read(const YAML::Node& n, Decision*) { return parse_decision(n.Scalar()); }
Result<std::uint64_t> read(const YAML::Node& n, std::uint64_t*) { return parse_size(n.Scalar()); }
Result<unsigned> read(const YAML::Node& n, unsigned*) { return parse_count(n.Scalar()); }
Result<double> read(const YAML::Node& n, double*) { return parse_cpus(n.Scalar()); }
Result<std::chrono::milliseconds> read(const YAML::Node& n, std::chrono::milliseconds*) { return parse_duration(n.Scalar()); }
Result<SeccompProfile> read(const YAML::Node& n, SeccompProfile*) { return parse_choice<SeccompProfile>(n.Scalar()); }
Result<NetworkMode> read(const YAML::Node& n, NetworkMode*) { return parse_choice<NetworkMode>(n.Scalar()); }
Result<std::vector<std::string>> read(const YAML::Node& n, std::vector<std::string>*) {
    std::vector<std::string> out;
    for (const auto& v : n) {
        if (!v.IsScalar() || v.Scalar().empty()) return make_error("parse list", "entries must be non-empty strings");
        out.push_back(v.Scalar());
    }
    return out;
}

template <class T>
nlohmann::json shown(const T& v) { return v; }
nlohmann::json shown(Level l) { return threat_model::to_string(l); }
nlohmann::json shown(Decision d) { return to_string(d); }
nlohmann::json shown(std::chrono::milliseconds d) { return d.count(); }
nlohmann::json shown(SeccompProfile s) { return std::string(choice_name(s)); }
nlohmann::json shown(NetworkMode m) { return std::string(choice_name(m)); }

std::string cxx(const std::string& s) { return codegen::literal(s); }
std::string cxx(bool b) { return b ? "true" : "false"; }
std::string cxx(Level l) { return codegen::level(l); }
std::string cxx(std::uint64_t n) { return std::to_string(n) + "ull"; }
std::string cxx(unsigned n) { return std::to_string(n) + "u"; }
std::string cxx(std::chrono::milliseconds d) { return "std::chrono::milliseconds{" + std::to_string(d.count()) + "}"; }
std::string cxx(const std::vector<std::string>& v) { return codegen::literal_list(v); }
std::string cxx(double d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", d);
    return buf;
}
std::string cxx(Decision d) {
    switch (d) {
        case Decision::Allow: return "Decision::Allow";
        case Decision::Ask: return "Decision::Ask";
        case Decision::Deny: return "Decision::Deny";
    }
    return "Decision::Deny";
}
std::string cxx(SeccompProfile s) {
    switch (s) {
        case SeccompProfile::Default: return "SeccompProfile::Default";
        case SeccompProfile::Strict: return "SeccompProfile::Strict";
    }
    return "SeccompProfile::Strict";
}
std::string cxx(NetworkMode m) {
    switch (m) {
        case NetworkMode::None: return "NetworkMode::None";
    }
    return "NetworkMode::None";
}

struct Field {
    const char* key;     // in presets and policy files
    const char* json;    // in to_json() (kiln://policy, audit records)
    const char* member;  // in Policy, for the generated presets
    bool list;           // a YAML sequence, not a single value
    std::function<Status(Policy&, const YAML::Node&)> read;
    std::function<nlohmann::json(const Policy&)> show;
    std::function<std::string(const Policy&)> cxx;
};

template <class T>
Field field(const char* key, const char* member, T Policy::*m, const char* json = nullptr) {
    return Field{key, json ? json : member, member, std::is_same_v<T, std::vector<std::string>>,
                 [m](Policy& p, const YAML::Node& n) -> Status {
                     auto v = read(n, static_cast<T*>(nullptr));
                     if (!v) return std::move(v).error();
                     p.*m = std::move(*v);
                     return {};
                 },
                 [m](const Policy& p) { return shown(p.*m); },
                 [m](const Policy& p) { return cxx(p.*m); }};
}

// Every field of Policy, in its declaration order (the generated presets
// are designated initializers, which must keep that order).
const std::vector<Field>& policy_fields() {
    static const std::vector<Field> fields = {
        field("name", "name", &Policy::name),
        field("deny_at", "deny_at", &Policy::deny_at),
        field("ask_at", "ask_at", &Policy::ask_at),
        field("warn_only", "warn_only", &Policy::warn_only),
        field("unparseable", "unparseable", &Policy::unparseable),
        field("memory", "memory_bytes", &Policy::memory_bytes),
        field("cpus", "cpus", &Policy::cpus),
        field("pids", "pids", &Policy::pids),
        field("timeout", "timeout", &Policy::timeout, "timeout_ms"),
        field("tmp_size", "tmp_size_bytes", &Policy::tmp_size_bytes),
        field("network", "network", &Policy::network),
        field("seccomp", "seccomp", &Policy::seccomp),
        field("max_timeout", "max_timeout", &Policy::max_timeout, "max_timeout_ms"),
        field("max_memory", "max_memory_bytes", &Policy::max_memory_bytes),
        field("max_code_size", "max_code_bytes", &Policy::max_code_bytes),
        field("command_allowlist_enabled", "command_allowlist_enabled", &Policy::command_allowlist_enabled),
        field("command_allowlist", "command_allowlist", &Policy::command_allowlist),
        field("ask_fallback", "ask_fallback", &Policy::ask_fallback),
    };
    return fields;
}

std::string known_keys() {
    std::string out;
    for (const auto& f : policy_fields()) out += (out.empty() ? "" : ", ") + std::string(f.key);
    return out;
}

Status apply_entry(Policy& p, const std::string& key, const YAML::Node& value, const std::string& where) {
    const auto& fields = policy_fields();
    auto f = std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return key == f.key; });
    if (f == fields.end()) return make_error(where, "unknown key '" + key + "' (known: " + known_keys() + ")");
    if (f->list && !value.IsSequence()) return make_error(where, "'" + key + "' must be a list");
    if (!f->list && !value.IsScalar()) return make_error(where, "'" + key + "' must be a single value");
    if (Status st = f->read(p, value); !st) return make_error(where, "'" + key + "': " + st.error().message);
    return {};
}

// The ordering rule that makes a policy coherent: asking must not start
// above denying, or "ask" could never be reached.
Status check_consistency(const Policy& p, const std::string& origin) {
    if (p.ask_at > p.deny_at)
        return make_error(origin, "ask_at (" + threat_model::to_string(p.ask_at) +
                                      ") must not be above deny_at (" + threat_model::to_string(p.deny_at) + ")");
    if (p.timeout > p.max_timeout) return make_error(origin, "timeout must not exceed max_timeout");
    if (p.memory_bytes > p.max_memory_bytes) return make_error(origin, "memory must not exceed max_memory");
    return {};
}

}  // namespace

std::vector<std::string> preset_names() { return {"permissive", "balanced", "strict", "paranoid"}; }

Status apply_policy_yaml(Policy& policy, std::string_view yaml_text, const std::string& origin) {
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml_text));
    } catch (const YAML::Exception& e) {
        return make_error("parse policy " + origin, "line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    if (root.IsNull()) return {};
    if (!root.IsMap()) return make_error("policy " + origin, "expected a mapping of policy keys");
    Policy next = policy;
    for (const auto& entry : root) {
        std::string where = "policy " + origin + ":" + std::to_string(entry.first.Mark().line + 1);
        if (Status st = apply_entry(next, entry.first.Scalar(), entry.second, where); !st) return st;
    }
    if (Status st = check_consistency(next, "policy " + origin); !st) return st;
    policy = std::move(next);
    return {};
}

const char* to_string(Decision d) {
    switch (d) {
        case Decision::Allow: return "allow";
        case Decision::Ask: return "ask";
        case Decision::Deny: return "deny";
    }
    return "deny";
}

nlohmann::json Policy::to_json() const {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& f : policy_fields()) out[f.json] = f.show(*this);
    return out;
}

std::vector<std::pair<std::string, std::string>> policy_initializers(const Policy& policy) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& f : policy_fields()) out.emplace_back(f.member, f.cxx(policy));
    return out;
}

}  // namespace kiln::security
