// Removes recognisable secrets from code before it is written to the audit
// log: cloud and SaaS API keys, tokens, private keys, JWTs, passwords in
// assignments and in URLs. Hand-written scanners rather than std::regex:
// libstdc++'s regex recurses per character and can overflow the stack on a
// 64 KiB input, and a scanner is an order of magnitude faster.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace kiln::audit {

struct Redaction {
    std::string text;                   // secrets replaced by "[REDACTED:<kind>]"
    std::map<std::string, int> counts;  // kind -> occurrences
};

Redaction redact_secrets(std::string_view code);

}  // namespace kiln::audit
