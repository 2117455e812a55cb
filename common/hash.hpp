// SHA-256 through OpenSSL's EVP interface.
#pragma once

#include <string>
#include <string_view>

namespace kiln {

std::string sha256_hex(std::string_view data);

}  // namespace kiln
