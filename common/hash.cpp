#include "common/hash.hpp"

#include "common/libcrypto.hpp"

#include <array>

namespace kiln {

std::string sha256_hex(std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    const crypto::LibCrypto& c = crypto::lib();
    c.EVP_Digest(data.data(), data.size(), md.data(), &len, c.EVP_sha256(), nullptr);
    static const char* hex = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned i = 0; i < len; ++i) {
        out.push_back(hex[md[i] >> 4]);
        out.push_back(hex[md[i] & 0xF]);
    }
    return out;
}

}  // namespace kiln
