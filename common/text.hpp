// Text helpers shared by the tools and the audit log: UTF-8 validation and
// base64 (OpenSSL's EVP encoder/decoder underneath).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kiln {

bool is_valid_utf8(std::string_view s);
std::string base64_encode(std::string_view data);
// Nothing when `text` is not valid base64 (whitespace is ignored).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace kiln
