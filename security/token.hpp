// Tokenizers for Python, POSIX sh/bash and JavaScript.
//
// The rules work on tokens, not on raw text, so that a string literal or a
// comment never triggers a rule ("never call os.system" in a comment is not
// a finding), while the literal *value* of a string is available decoded,
// so obfuscations built from constant strings can be folded and matched.
// Tokenizers never fail: malformed input (unterminated strings, stray
// bytes) becomes best-effort tokens, because the validator must give a
// verdict on every input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::security {

enum class TokenKind {
    Identifier,  // Python/JS names and keywords
    Number,
    String,      // value holds the decoded literal
    Operator,    // punctuation and operators: ( ) [ ] . , = + | ; && ...
    Word,        // shell word; value holds it with quotes removed and escapes decoded
    Newline,     // logical line end (Python NEWLINE, shell newline or ';')
    Other,       // a byte no rule cares about
};

struct Token {
    TokenKind kind = TokenKind::Other;
    std::string text;   // the source text of the token
    std::string value;  // decoded value of strings and shell words; empty for other kinds
    int line = 1;       // 1-based
    int column = 1;     // 1-based, in bytes
    // Shell words: true when any part came from an expansion ($x, $(...),
    // `...`), i.e. the word's real value is not known statically.
    bool dynamic = false;
    // JS template literal or Python f-string with interpolations.
    bool interpolated = false;
};

std::vector<Token> tokenize_python(std::string_view code);
std::vector<Token> tokenize_shell(std::string_view code);
std::vector<Token> tokenize_javascript(std::string_view code);

const char* to_string(TokenKind k);

}  // namespace kiln::security
