#include "security/rules.hpp"
namespace kiln::security::detail { void rules_python(const std::vector<Token>&, Findings&) {} }
