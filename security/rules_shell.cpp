#include "security/rules.hpp"
namespace kiln::security::detail { void rules_shell(const std::vector<Token>&, Findings&) {} }
