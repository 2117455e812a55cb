#include "security/policy.hpp"

#include <yaml-cpp/yaml.h>

#include <functional>

#include "common/units.hpp"

namespace kiln::security {

namespace {

using threat_model::Level;

// One entry per key a preset or policy file may set. The same table checks
// presets and operator files, so they cannot drift apart.
using Setter = std::function<Status(Policy&, const std::string& value)>;

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

template <class T, class Parse>
Setter field(T Policy::*member, Parse parse) {
    return [member, parse](Policy& p, const std::string& v) -> Status {
        auto r = parse(v);
        if (!r) return std::move(r).error();
        p.*member = *r;
        return {};
    };
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

Result<std::string> parse_network(const std::string& v) {
    if (v == "none") return v;
    return make_error("parse network", "'" + v + "': only 'none' is supported (C003 Network Isolation)");
}

Result<std::string> parse_seccomp(const std::string& v) {
    if (v == "default" || v == "strict") return v;
    return make_error("parse seccomp", "'" + v + "' is not 'default' or 'strict'");
}

Result<std::string> parse_name(const std::string& v) {
    if (!v.empty()) return v;
    return make_error("parse name", "must not be empty");
}

const std::map<std::string, Setter>& scalar_keys() {
    static const std::map<std::string, Setter> keys = {
        {"name", field(&Policy::name, parse_name)},
        {"warn_only", field(&Policy::warn_only, parse_bool)},
        {"deny_at", field(&Policy::deny_at, threat_model::parse_level)},
        {"ask_at", field(&Policy::ask_at, threat_model::parse_level)},
        {"unparseable", field(&Policy::unparseable, parse_decision)},
        {"ask_fallback", field(&Policy::ask_fallback, parse_decision)},
        {"memory", field(&Policy::memory_bytes, parse_size)},
        {"cpus", field(&Policy::cpus, parse_cpus)},
        {"pids", field(&Policy::pids, parse_count)},
        {"timeout", field(&Policy::timeout, parse_duration)},
        {"tmp_size", field(&Policy::tmp_size_bytes, parse_size)},
        {"network", field(&Policy::network, parse_network)},
        {"seccomp", field(&Policy::seccomp, parse_seccomp)},
        {"max_timeout", field(&Policy::max_timeout, parse_duration)},
        {"max_memory", field(&Policy::max_memory_bytes, parse_size)},
        {"max_code_size", field(&Policy::max_code_bytes, parse_size)},
        {"command_allowlist_enabled", field(&Policy::command_allowlist_enabled, parse_bool)},
    };
    return keys;
}

std::string known_keys() {
    std::string out;
    for (const auto& [k, _] : scalar_keys()) out += k + ", ";
    return out + "command_allowlist";
}

Status apply_entry(Policy& p, const std::string& key, const YAML::Node& value, const std::string& where) {
    if (key == "command_allowlist") {
        if (!value.IsSequence())
            return make_error(where, "command_allowlist must be a list of command names");
        p.command_allowlist.clear();
        for (const auto& v : value) {
            if (!v.IsScalar() || v.Scalar().empty())
                return make_error(where, "command_allowlist entries must be non-empty strings");
            p.command_allowlist.push_back(v.Scalar());
        }
        return {};
    }
    auto it = scalar_keys().find(key);
    if (it == scalar_keys().end())
        return make_error(where, "unknown key '" + key + "' (known: " + known_keys() + ")");
    if (!value.IsScalar()) return make_error(where, "'" + key + "' must be a single value");
    if (Status st = it->second(p, value.Scalar()); !st)
        return make_error(where, "'" + key + "': " + st.error().message);
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
    return {
        {"name", name},
        {"warn_only", warn_only},
        {"deny_at", threat_model::to_string(deny_at)},
        {"ask_at", threat_model::to_string(ask_at)},
        {"unparseable", to_string(unparseable)},
        {"ask_fallback", to_string(ask_fallback)},
        {"memory_bytes", memory_bytes},
        {"cpus", cpus},
        {"pids", pids},
        {"timeout_ms", timeout.count()},
        {"tmp_size_bytes", tmp_size_bytes},
        {"network", network},
        {"seccomp", seccomp},
        {"max_timeout_ms", max_timeout.count()},
        {"max_memory_bytes", max_memory_bytes},
        {"max_code_bytes", max_code_bytes},
        {"command_allowlist_enabled", command_allowlist_enabled},
        {"command_allowlist", command_allowlist},
    };
}

}  // namespace kiln::security
