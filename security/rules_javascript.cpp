#include "security/rules.hpp"
namespace kiln::security::detail { void rules_javascript(const std::vector<Token>&, Findings&) {} }
