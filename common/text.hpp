// Text helpers shared by the tools and the audit log: UTF-8 validation and
// base64 (OpenSSL's EVP encoder/decoder underneath).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace kiln {

bool is_valid_utf8(std::string_view s);
// The whole of a file; the error names `what` ("tokens file", "JWKS") and the path.
Result<std::string> read_file_text(const std::string& path, const std::string& what);
std::string base64_encode(std::string_view data);
// Nothing when `text` is not valid base64 (whitespace is ignored).
std::optional<std::string> base64_decode(std::string_view text);
// RFC 6749 section 3.3: an OAuth scope is printable ASCII without space,
// '"' or '\\', which also keeps it safe inside a WWW-Authenticate header.
bool is_scope_token(std::string_view s);

// The URL-safe alphabet without padding (RFC 4648 section 5), as JWTs and
// JWKs use it. Decoding is strict: nothing for '=', whitespace, any
// character outside the alphabet or unused bits that are not zero.
std::string base64url_encode(std::string_view data);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace kiln
