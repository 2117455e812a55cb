// Internal to the validator: the rule passes per language and the helpers
// they share. Not part of the public interface (security/validator.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "security/policy.hpp"
#include "security/token.hpp"
#include "security/validator.hpp"

namespace kiln::security::detail {

// Collects findings; fills the threat's controls from the catalogue and
// offsets positions when analysing code embedded in another language
// (a constant string handed to os.system is analysed as shell, with the
// findings placed at the string's position).
class Findings {
public:
    Findings(const Policy& policy, int depth = 0) : policy_(policy), depth_(depth) {}

    void add(std::string rule, std::string threat, Severity severity, const Token& at,
             std::string message, std::string hint);
    void add_at(std::string rule, std::string threat, Severity severity, int line, int column,
                std::string message, std::string hint, std::vector<std::string> controls = {});

    // Analysis of code found inside code, bounded so a crafted input cannot
    // recurse without end.
    bool can_nest() const { return depth_ < 4; }
    // Runs `language` rules over `code`; findings are placed at `at`.
    void analyze_nested(Language language, std::string_view code, const Token& at);

    const Policy& policy() const { return policy_; }
    std::vector<Finding>& list() { return list_; }

private:
    const Policy& policy_;
    int depth_;
    std::vector<Finding> list_;
};

void rules_python(const std::vector<Token>& tokens, Findings& out);
void rules_shell(const std::vector<Token>& tokens, Findings& out);
void rules_javascript(const std::vector<Token>& tokens, Findings& out);

// Paths and names in string constants that point at the host, the kernel or
// credentials (/etc/shadow, ~/.ssh, docker.sock, /proc/sys, /dev/tcp ...).
// Shared by all languages; applied to decoded string values only.
void check_sensitive_string(const Token& tok, std::string_view value, Findings& out);

// "system", "popen", "eval" ...: names that, reached through getattr or a
// subscript, are an attempt to hide a call.
bool is_dangerous_attribute(std::string_view name);

}  // namespace kiln::security::detail
