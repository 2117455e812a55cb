// Static bearer tokens from a file (server.auth.tokens_file).
//
// One token a line, with the principal it stands for and the scopes it
// grants:
//
//     # principal   token                                   scopes (optional)
//     alice         sha256:<64 hex digits of SHA-256(token)> kiln:read kiln:run
//     ci-bot        kiln_3q2-7wEx...                        kiln:read
//
// A token may be written as its SHA-256 (what `kiln token new` prints, so
// the file holds no secret) or as itself, which is hashed when the file is
// read. Only digests are kept in memory, and a presented token's digest is
// compared with every one of them in constant time.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/hash.hpp"
#include "common/result.hpp"

namespace kiln::auth {

struct TokenEntry {
    std::string principal;
    Sha256Digest digest{};
    std::set<std::string> scopes;
    int line = 0;
};

class BearerTokens {
public:
    // `origin` names the text in errors ("tokens.txt"); each error names the
    // line and the field, never the token.
    static Result<BearerTokens> parse(std::string_view text, const std::string& origin);
    static Result<BearerTokens> load(const std::string& path);

    // The entry whose token this is, or nullptr. Takes the same time
    // whichever entry matches, or none.
    const TokenEntry* find(std::string_view token) const;
    std::size_t size() const { return entries_.size(); }

private:
    std::vector<TokenEntry> entries_;
};

// What a principal's name may be: 1-128 letters, digits or . _ - @ :
bool is_principal_name(std::string_view name);

// RFC 6750's b64token: the characters a bearer token may have.
bool is_b64token(std::string_view token);

// A fresh token: "kiln_" and 256 random bits in base64url.
Result<std::string> new_token();

}  // namespace kiln::auth
