#include "common/units.hpp"

#include <cctype>
#include <charconv>
#include <cmath>

namespace kiln {
namespace {

struct NumberAndSuffix {
    double number = 0;
    std::string suffix;
};

Result<NumberAndSuffix> split_number(std::string_view text, const char* what) {
    std::string s(text);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == 0)
        return make_error(what, "'" + s + "' does not start with a number");
    NumberAndSuffix out;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + i, out.number);
    if (ec != std::errc() || ptr != s.data() + i || !std::isfinite(out.number))
        return make_error(what, "'" + s + "' is not a valid number");
    out.suffix = s.substr(i);
    for (auto& c : out.suffix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

Result<std::uint64_t> parse_size(std::string_view text) {
    auto parts = split_number(text, "size");
    if (!parts) return parts.error();
    const std::string& sfx = parts->suffix;
    double mult = 0;
    if (sfx.empty() || sfx == "b") mult = 1;
    else if (sfx == "k" || sfx == "kb" || sfx == "kib") mult = 1024.0;
    else if (sfx == "m" || sfx == "mb" || sfx == "mib") mult = 1024.0 * 1024;
    else if (sfx == "g" || sfx == "gb" || sfx == "gib") mult = 1024.0 * 1024 * 1024;
    else if (sfx == "t" || sfx == "tb" || sfx == "tib") mult = 1024.0 * 1024 * 1024 * 1024;
    else
        return make_error("size", "unknown unit '" + parts->suffix +
                                      "' in '" + std::string(text) +
                                      "' (use a number with B, K, M, G or T, e.g. 256M)");
    double bytes = parts->number * mult;
    if (bytes > 1.8e19) return make_error("size", "'" + std::string(text) + "' is too large");
    return static_cast<std::uint64_t>(bytes);
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
    auto parts = split_number(text, "duration");
    if (!parts) return parts.error();
    const std::string& sfx = parts->suffix;
    double ms_per_unit = 0;
    if (sfx.empty() || sfx == "s") ms_per_unit = 1000;
    else if (sfx == "ms") ms_per_unit = 1;
    else if (sfx == "m" || sfx == "min") ms_per_unit = 60'000;
    else if (sfx == "h") ms_per_unit = 3'600'000;
    else
        return make_error("duration", "unknown unit '" + parts->suffix + "' in '" +
                                          std::string(text) +
                                          "' (use ms, s, m or h, e.g. 10s or 500ms)");
    double ms = parts->number * ms_per_unit;
    if (ms > 1e15) return make_error("duration", "'" + std::string(text) + "' is too long");
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(ms)));
}

std::string format_size(std::uint64_t bytes) {
    static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    std::uint64_t v = bytes;
    while (u < 4 && v >= 1024 && v % 1024 == 0) {
        v /= 1024;
        ++u;
    }
    return std::to_string(v) + units[u];
}

std::string format_duration(std::chrono::milliseconds d) {
    auto ms = d.count();
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

}  // namespace kiln
