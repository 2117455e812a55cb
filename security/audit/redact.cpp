#include "security/audit/redact.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <optional>
#include <vector>

namespace kiln::audit {
namespace {

struct Span {
    std::size_t begin, end;
    std::string kind;
    int priority;  // 0: a recognised key format, 1: a generic assignment
};

bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_upper_alnum(char c) { return std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)); }
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool is_b64url(char c) { return is_word(c) || c == '-'; }
bool is_alnum_dash(char c) { return is_alnum(c) || c == '-'; }
bool is_path_token(char c) { return is_alnum(c) || c == '/'; }

// A token introduced by a fixed prefix ("ghp_", "AKIA"...) and followed by
// a run of `body` characters of at least `min` (at most `max`) length.
struct PrefixRule {
    std::string_view prefix;
    std::string_view kind;
    bool (*body)(char);
    std::size_t min, max;
};

// Longer prefixes first so "sk-ant-" is named before "sk-".
constexpr std::array<PrefixRule, 28> kPrefixRules{{
    {"sk-ant-", "anthropic_api_key", is_b64url, 20, 400},
    {"sk-", "openai_api_key", is_b64url, 20, 400},
    {"github_pat_", "github_token", is_word, 22, 400},
    {"ghp_", "github_token", is_alnum, 30, 255},
    {"gho_", "github_token", is_alnum, 30, 255},
    {"ghu_", "github_token", is_alnum, 30, 255},
    {"ghs_", "github_token", is_alnum, 30, 255},
    {"ghr_", "github_token", is_alnum, 30, 255},
    {"glpat-", "gitlab_token", is_b64url, 20, 255},
    {"xoxb-", "slack_token", is_alnum_dash, 10, 255},
    {"xoxp-", "slack_token", is_alnum_dash, 10, 255},
    {"xoxa-", "slack_token", is_alnum_dash, 10, 255},
    {"xoxe-", "slack_token", is_alnum_dash, 10, 255},
    {"xoxr-", "slack_token", is_alnum_dash, 10, 255},
    {"xoxs-", "slack_token", is_alnum_dash, 10, 255},
    {"hooks.slack.com/services/", "slack_webhook", is_path_token, 20, 255},
    {"AKIA", "aws_access_key_id", is_upper_alnum, 16, 16},
    {"ASIA", "aws_access_key_id", is_upper_alnum, 16, 16},
    {"AIDA", "aws_access_key_id", is_upper_alnum, 16, 16},
    {"AROA", "aws_access_key_id", is_upper_alnum, 16, 16},
    {"AGPA", "aws_access_key_id", is_upper_alnum, 16, 16},
    {"ANPA", "aws_access_key_id", is_upper_alnum, 16, 16},
    {"AIza", "google_api_key", is_b64url, 35, 35},
    {"sk_live_", "stripe_key", is_alnum, 16, 255},
    {"rk_live_", "stripe_key", is_alnum, 16, 255},
    {"sk_test_", "stripe_key", is_alnum, 16, 255},
    {"npm_", "npm_token", is_alnum, 36, 36},
    {"hf_", "huggingface_token", is_alnum, 30, 40},
}};

std::size_t run_of(std::string_view s, std::size_t i, bool (*pred)(char)) {
    std::size_t j = i;
    while (j < s.size() && pred(s[j])) ++j;
    return j;
}

void find_prefixed(std::string_view s, std::vector<Span>& out) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i > 0 && is_word(s[i - 1])) continue;  // tokens start at a word boundary
        for (const auto& rule : kPrefixRules) {
            if (s.compare(i, rule.prefix.size(), rule.prefix) != 0) continue;
            std::size_t body = i + rule.prefix.size();
            std::size_t end = run_of(s, body, rule.body);
            std::size_t len = end - body;
            if (len < rule.min || len > rule.max) continue;
            out.push_back({i, end, std::string(rule.kind), 0});
            i = end - 1;
            break;
        }
    }
}

// -----BEGIN ... PRIVATE KEY----- through the matching END line (or the end
// of the text when the block was cut by the size cap).
void find_pem(std::string_view s, std::vector<Span>& out) {
    std::size_t pos = 0;
    while ((pos = s.find("-----BEGIN ", pos)) != std::string_view::npos) {
        std::size_t header_end = s.find("-----", pos + 11);
        if (header_end == std::string_view::npos) return;
        std::string_view label = s.substr(pos + 11, header_end - pos - 11);
        if (label.find("PRIVATE KEY") == std::string_view::npos || label.find('\n') != std::string_view::npos) {
            pos = header_end;
            continue;
        }
        std::size_t end_marker = s.find("-----END ", header_end + 5);
        std::size_t end = s.size();
        if (end_marker != std::string_view::npos) {
            std::size_t close = s.find("-----", end_marker + 9);
            end = close == std::string_view::npos ? s.size() : close + 5;
        }
        out.push_back({pos, end, "private_key", 0});
        pos = end;
    }
}

// header.payload.signature where header and payload are base64url JSON
// objects, so both start with "eyJ" ('{"' encoded).
void find_jwt(std::string_view s, std::vector<Span>& out) {
    std::size_t pos = 0;
    while ((pos = s.find("eyJ", pos)) != std::string_view::npos) {
        std::size_t start = pos;
        pos += 3;
        if (start > 0 && is_b64url(s[start - 1])) continue;
        std::size_t a = run_of(s, start, is_b64url);
        if (a - start < 10 || a >= s.size() || s[a] != '.' || s.compare(a + 1, 3, "eyJ") != 0) continue;
        std::size_t b = run_of(s, a + 1, is_b64url);
        if (b - a - 1 < 10 || b >= s.size() || s[b] != '.') continue;
        std::size_t c = run_of(s, b + 1, is_b64url);
        if (c - b - 1 < 10) continue;
        out.push_back({start, c, "jwt", 0});
        pos = c;
    }
}

// scheme://user:password@host: the password part only.
void find_url_passwords(std::string_view s, std::vector<Span>& out) {
    std::size_t pos = 0;
    while ((pos = s.find("://", pos)) != std::string_view::npos) {
        pos += 3;
        std::size_t colon = pos;
        while (colon < s.size() && !std::strchr(":/@ \t\n\"'", s[colon])) ++colon;
        if (colon >= s.size() || s[colon] != ':') continue;
        std::size_t at = colon + 1;
        while (at < s.size() && !std::strchr("/@ \t\n\"'", s[at])) ++at;
        if (at >= s.size() || s[at] != '@' || at == colon + 1) continue;
        out.push_back({colon + 1, at, "url_password", 0});
        pos = at;
    }
}

bool names_a_secret(std::string_view ident) {
    std::string lower(ident);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    static constexpr std::array<std::string_view, 11> kWords{
        "password", "passwd", "passphrase", "secret", "token", "api_key", "apikey",
        "access_key", "private_key", "credential", "auth_key"};
    return std::any_of(kWords.begin(), kWords.end(),
                       [&](std::string_view w) { return lower.find(w) != std::string::npos; });
}

// The quoted literal starting at s[q] (which is a quote): its contents.
std::optional<std::pair<std::size_t, std::size_t>> quoted_at(std::string_view s, std::size_t q) {
    char quote = s[q];
    for (std::size_t j = q + 1; j < s.size(); ++j) {
        if (s[j] == '\\') {
            ++j;
        } else if (s[j] == '\n') {
            return std::nullopt;
        } else if (s[j] == quote) {
            return std::make_pair(q + 1, j);
        }
    }
    return std::nullopt;
}

// NAME = "literal" / NAME: 'literal' / NAME == "literal" / NAME=value
// (shell and .env style, no spaces) where NAME mentions a password, token,
// secret or key. Only literals are redacted: `password = input()` is code.
void find_assignments(std::string_view s, std::vector<Span>& out) {
    std::size_t i = 0;
    while (i < s.size()) {
        if (!is_word(s[i]) || (i > 0 && is_word(s[i - 1]))) {
            ++i;
            continue;
        }
        std::size_t ident_end = run_of(s, i, is_word);
        std::string_view ident = s.substr(i, ident_end - i);
        i = ident_end;
        if (!names_a_secret(ident)) continue;
        std::size_t j = ident_end;
        while (j < s.size() && (s[j] == '"' || s[j] == '\'' || s[j] == ']')) ++j;
        std::size_t before_op = j;
        while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
        bool spaced = j != before_op;
        std::size_t op = j;
        while (j < s.size() && (s[j] == '=' || s[j] == ':' || s[j] == '>') && j - op < 2) ++j;
        if (j == op) continue;
        std::size_t after_op = j;
        while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
        spaced = spaced || j != after_op;
        if (j < s.size() && std::strchr("bruf", s[j]) && j + 1 < s.size() && (s[j + 1] == '"' || s[j + 1] == '\'')) ++j;
        if (j < s.size() && (s[j] == '"' || s[j] == '\'' || s[j] == '`')) {
            if (auto lit = quoted_at(s, j); lit && lit->second > lit->first) {
                out.push_back({lit->first, lit->second, "assigned_secret", 1});
                i = lit->second;
            }
            continue;
        }
        if (spaced || s[op] != '=' || after_op - op != 1 || j >= s.size() || s[j] == '$') continue;
        std::size_t end = j;
        while (end < s.size() && !std::isspace(static_cast<unsigned char>(s[end])) && !std::strchr("'\"();,&|`", s[end])) ++end;
        if (end - j >= 6 && (end >= s.size() || s[end] != '(')) {
            out.push_back({j, end, "assigned_secret", 1});
            i = end;
        }
    }
}

}  // namespace

Redaction redact_secrets(std::string_view code) {
    std::vector<Span> spans;
    find_pem(code, spans);
    find_prefixed(code, spans);
    find_jwt(code, spans);
    find_url_passwords(code, spans);
    find_assignments(code, spans);
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.priority < b.priority;
    });

    Redaction r;
    r.text.reserve(code.size());
    std::size_t copied = 0;
    for (const auto& span : spans) {
        if (span.begin < copied) continue;  // overlaps a span already redacted
        r.text.append(code.substr(copied, span.begin - copied));
        r.text += "[REDACTED:" + span.kind + "]";
        ++r.counts[span.kind];
        copied = span.end;
    }
    r.text.append(code.substr(copied));
    return r;
}

}  // namespace kiln::audit
