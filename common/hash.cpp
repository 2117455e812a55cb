#include "common/hash.hpp"

#include "common/libcrypto.hpp"

namespace kiln {

Sha256Digest sha256(std::string_view data) {
    Sha256Digest md{};
    unsigned int len = 0;
    const crypto::LibCrypto& c = crypto::lib();
    c.EVP_Digest(data.data(), data.size(), md.data(), &len, c.EVP_sha256(), nullptr);
    return md;
}

std::string sha256_hex(std::string_view data) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    out.reserve(64);
    for (unsigned char b : sha256(data)) {
        out.push_back(hex[b >> 4]);
        out.push_back(hex[b & 0xF]);
    }
    return out;
}

}  // namespace kiln
