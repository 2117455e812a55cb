// Parsing of the human units used in flags and YAML: sizes ("256M", "1G",
// "512KiB", plain bytes) and durations ("10s", "500ms", "2m", plain seconds).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace kiln {

Result<std::uint64_t> parse_size(std::string_view text);
Result<std::chrono::milliseconds> parse_duration(std::string_view text);
std::string format_size(std::uint64_t bytes);
std::string format_duration(std::chrono::milliseconds d);

}  // namespace kiln
