// The languages the validator reads, and how a name or a file maps to one.
#pragma once

#include <string_view>

#include "common/result.hpp"

namespace kiln::security {

enum class Language { Python, Shell, JavaScript };

// "python" | "bash" | "sh" | "shell" | "javascript" | "js" | "node".
Result<Language> parse_language(std::string_view name);
// Guesses from the file extension, then from a "#!" line; error if neither says.
Result<Language> guess_language(std::string_view path, std::string_view code);
// "python" "shell" "javascript".
const char* to_string(Language l);

}  // namespace kiln::security
