#include "security/audit/record.hpp"

#include <sys/stat.h>

#include <array>
#include <cctype>
#include <ctime>
#include <fstream>
#include <sstream>

#include "common/libcrypto.hpp"
#include "common/secret_file.hpp"
#include "common/units.hpp"

namespace kiln::audit {

const std::string kGenesisHash(64, '0');

namespace {

std::string to_hex(const unsigned char* p, std::size_t n) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(digits[p[i] >> 4]);
        out.push_back(digits[p[i] & 0xF]);
    }
    return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        auto nibble = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return out;
}

}  // namespace

std::string dump_record(const nlohmann::json& record) {
    return record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string canonical_bytes(nlohmann::json record) {
    record.erase("hash");
    record.erase("hmac");
    return dump_record(record);
}

std::string chain_hash(std::string_view prev_hash, std::string_view canonical) {
    const crypto::LibCrypto& c = crypto::lib();
    EVP_MD_CTX* ctx = c.EVP_MD_CTX_new();
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    c.EVP_DigestInit_ex(ctx, c.EVP_sha256(), nullptr);
    c.EVP_DigestUpdate(ctx, prev_hash.data(), prev_hash.size());
    c.EVP_DigestUpdate(ctx, canonical.data(), canonical.size());
    c.EVP_DigestFinal_ex(ctx, md.data(), &len);
    c.EVP_MD_CTX_free(ctx);
    return to_hex(md.data(), len);
}

std::string hmac_hex(std::string_view key, std::string_view hash) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    const crypto::LibCrypto& c = crypto::lib();
    c.HMAC(c.EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(hash.data()), hash.size(), md.data(), &len);
    return to_hex(md.data(), len);
}

std::string format_rfc3339_us(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
    long frac = static_cast<long>(us % 1'000'000);
    if (frac < 0) {
        frac += 1'000'000;
        --secs;
    }
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%06ldZ", frac);
    return buf;
}

std::optional<std::chrono::system_clock::time_point> parse_time(std::string_view text) {
    using namespace std::chrono;
    if (text.empty()) return std::nullopt;
    if (std::isdigit(static_cast<unsigned char>(text.front())) && text.size() <= 6 &&
        !std::isdigit(static_cast<unsigned char>(text.back()))) {
        // A relative age: "7d" is not a parse_duration unit, so days are handled here.
        if (text.back() == 'd') {
            try {
                return system_clock::now() - hours(24) * std::stol(std::string(text.substr(0, text.size() - 1)));
            } catch (...) {
                return std::nullopt;
            }
        }
        auto d = parse_duration(std::string(text));
        if (!d) return std::nullopt;
        return system_clock::now() - *d;
    }
    std::tm tm{};
    std::string s(text);
    const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end) {
        end = strptime(s.c_str(), "%Y-%m-%d", &tm);
        if (!end || *end != '\0') return std::nullopt;
    }
    long frac_us = 0;
    if (*end == '.') {
        ++end;
        int digits = 0;
        while (std::isdigit(static_cast<unsigned char>(*end))) {
            if (digits < 6) frac_us = frac_us * 10 + (*end - '0');
            ++digits;
            ++end;
        }
        for (; digits < 6; ++digits) frac_us *= 10;
    }
    if (*end == 'Z') ++end;
    if (*end != '\0') return std::nullopt;
    return system_clock::from_time_t(timegm(&tm)) + microseconds(frac_us);
}

std::string record_id(std::uint64_t seq, std::string_view hash) {
    return std::to_string(seq) + "-" + std::string(hash.substr(0, 12));
}

Result<std::string> load_hmac_key(const std::string& path) {
    auto text = read_secret_file(path, "audit HMAC key");
    if (!text) return std::move(text).error();
    std::string key = std::move(*text);
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
    if (key.size() < 16)
        return make_error("load audit HMAC key " + path,
                          "the key is shorter than 16 bytes; create one with: openssl rand -hex 32 > " + path);
    return key;
}

Result<std::string> load_seal_key(const std::string& path) {
    auto text = read_secret_file(path, "audit seal key");
    if (!text) return std::move(text).error();
    std::string raw = std::move(*text);
    if (raw.size() == 32) return raw;
    std::string trimmed = raw;
    while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back()))) trimmed.pop_back();
    if (trimmed.size() == 64) {
        if (auto bytes = from_hex(trimmed)) return *bytes;
    }
    return make_error("load audit seal key " + path,
                      "AES-256-GCM needs 32 raw bytes or 64 hex digits; create one with: openssl rand -hex 32 > " + path);
}

}  // namespace kiln::audit
