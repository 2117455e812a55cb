#include "server/bearer_tokens.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>

#include "common/libcrypto.hpp"
#include "common/text.hpp"

namespace kiln::auth {
namespace {

constexpr std::string_view kDigestPrefix = "sha256:";
// A plain token shorter than this is guessable; `kiln token new` makes 48.
constexpr std::size_t kMinPlainTokenLength = 32;
constexpr std::size_t kMaxPrincipalLength = 128;

std::optional<Sha256Digest> parse_hex_digest(std::string_view hex) {
    if (hex.size() != 64) return std::nullopt;
    Sha256Digest out{};
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto nibble = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            return -1;
        };
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out[i] = static_cast<unsigned char>(hi << 4 | lo);
    }
    return out;
}

Error line_error(const std::string& origin, int line, const std::string& message) {
    return make_error("tokens file " + origin + ":" + std::to_string(line), message);
}

// The digest a token field stands for: "sha256:<hex>" or the token itself.
Result<Sha256Digest> token_field_digest(const std::string& field, const std::string& origin, int line) {
    if (field.rfind(kDigestPrefix, 0) == 0) {
        auto d = parse_hex_digest(std::string_view(field).substr(kDigestPrefix.size()));
        if (!d) return line_error(origin, line, "the token's digest must be 'sha256:' and 64 hex digits");
        return *d;
    }
    if (!is_b64token(field))
        return line_error(origin, line, "the token has characters a bearer token cannot have (allowed: letters, digits, - . _ ~ + / and trailing =)");
    if (field.size() < kMinPlainTokenLength)
        return line_error(origin, line, "the token is shorter than " + std::to_string(kMinPlainTokenLength) +
                                            " characters; make one with `kiln token new`");
    return sha256(field);
}

Result<TokenEntry> parse_line(const std::string& text, const std::string& origin, int line) {
    std::istringstream in(text);
    std::vector<std::string> fields;
    for (std::string f; in >> f;) fields.push_back(f);
    if (fields.size() < 2)
        return line_error(origin, line, "expected '<principal> <token or sha256:hex> [scope...]'");
    TokenEntry e;
    e.line = line;
    if (!is_principal_name(fields[0]))
        return line_error(origin, line, "the principal must be 1-128 letters, digits or . _ - @ :");
    e.principal = fields[0];
    auto digest = token_field_digest(fields[1], origin, line);
    if (!digest) return digest.error();
    e.digest = *digest;
    for (std::size_t i = 2; i < fields.size(); ++i) {
        if (!is_scope_token(fields[i]))
            return line_error(origin, line, "scope " + std::to_string(i - 1) + " is not a scope token (printable ASCII without quote or backslash)");
        e.scopes.insert(fields[i]);
    }
    return e;
}

}  // namespace

// Principals end up in audit records and logs: a conservative alphabet
// keeps them unambiguous there.
bool is_principal_name(std::string_view s) {
    return !s.empty() && s.size() <= kMaxPrincipalLength && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '@' || c == ':';
    });
}

bool is_b64token(std::string_view t) {
    std::size_t end = t.find_last_not_of('=');
    if (end == std::string_view::npos) return false;
    return std::all_of(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(end) + 1, [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
    });
}

Result<BearerTokens> BearerTokens::parse(std::string_view text, const std::string& origin) {
    BearerTokens out;
    std::map<Sha256Digest, int> seen;  // digest -> line, to name both lines of a duplicate
    std::istringstream in{std::string(text)};
    int line = 0;
    for (std::string raw; std::getline(in, raw);) {
        ++line;
        std::string content = raw.substr(0, raw.find('#'));
        if (content.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto entry = parse_line(content, origin, line);
        if (!entry) return entry.error();
        auto [it, fresh] = seen.emplace(entry->digest, line);
        if (!fresh)
            return line_error(origin, line, "the same token as line " + std::to_string(it->second) + "; each token names one principal");
        out.entries_.push_back(std::move(*entry));
    }
    if (out.entries_.empty())
        return make_error("tokens file " + origin, "holds no token, so no client could authenticate; add '<principal> <token>' lines");
    return out;
}

Result<BearerTokens> BearerTokens::load(const std::string& path) {
    auto text = read_file_text(path, "tokens file (server.auth.tokens_file)");
    if (!text) return text.error();
    return parse(*text, path);
}

const TokenEntry* BearerTokens::find(std::string_view token) const {
    const Sha256Digest digest = sha256(token);
    const crypto::LibCrypto& c = crypto::lib();
    // Every entry is compared, and CRYPTO_memcmp takes the same time for any
    // two digests: how long this takes says nothing about which token, if
    // any, is close to the one presented.
    const TokenEntry* match = nullptr;
    for (const auto& e : entries_) {
        bool equal = c.CRYPTO_memcmp(e.digest.data(), digest.data(), digest.size()) == 0;
        match = equal ? &e : match;
    }
    return match;
}

Result<std::string> new_token() {
    unsigned char bytes[32];
    if (crypto::lib().RAND_bytes(bytes, sizeof bytes) != 1)
        return make_error("make a token", "OpenSSL's random generator failed: " + crypto::last_error());
    return "kiln_" + base64url_encode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

}  // namespace kiln::auth
