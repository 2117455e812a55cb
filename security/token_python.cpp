#include "security/token.hpp"
namespace kiln::security {
std::vector<Token> tokenize_python(std::string_view) { return {}; }
const char* to_string(TokenKind k) {
    switch (k) {
        case TokenKind::Identifier: return "identifier";
        case TokenKind::Number: return "number";
        case TokenKind::String: return "string";
        case TokenKind::Operator: return "operator";
        case TokenKind::Word: return "word";
        case TokenKind::Newline: return "newline";
        case TokenKind::Other: return "other";
    }
    return "other";
}
}  // namespace kiln::security
