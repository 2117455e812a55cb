// SHA-256 through OpenSSL's EVP interface.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace kiln {

using Sha256Digest = std::array<unsigned char, 32>;

Sha256Digest sha256(std::string_view data);
std::string sha256_hex(std::string_view data);

}  // namespace kiln
