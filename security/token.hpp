// Tokenizers for Python, POSIX sh/bash and JavaScript.
//
// The rules work on tokens, not on raw text, so that a string literal or a
// comment never triggers a rule ("never call os.system" in a comment is not
// a finding), while the literal *value* of a string is available decoded,
// so obfuscations built from constant strings can be folded and matched.
// Tokenizers never fail: malformed input (unterminated strings, stray
// bytes) becomes best-effort tokens, because the validator must give a
// verdict on every input.
//
// Tokens do not own their text: it is a view into the source handed to the
// tokenizer, which must outlive the TokenList. A decoded value is a view
// into the source too when the literal holds nothing to decode (most
// strings and words), and otherwise into storage owned by the TokenList.
// Copying a token is therefore cheap, and tokenizing allocates a few blocks
// instead of a string per token.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace kiln::security {

enum class TokenKind : std::uint8_t {
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
    // Shell words: true when any part came from an expansion ($x, $(...),
    // `...`), i.e. the word's real value is not known statically.
    bool dynamic = false;
    // JS template literal or Python f-string with interpolations.
    bool interpolated = false;
    int line = 1;             // 1-based
    int column = 1;           // 1-based, in bytes
    std::string_view text;    // the source text of the token
    std::string_view value;   // decoded value of strings and shell words; empty for other kinds
};

// Append-only storage for decoded values. Blocks never move, so views
// handed out stay valid as more is stored, and when the arena is moved.
class TextArena {
public:
    std::string_view store(std::string_view s);

private:
    static constexpr std::size_t kBlock = 16 * 1024;
    std::vector<std::unique_ptr<char[]>> blocks_;
    char* free_ = nullptr;
    std::size_t left_ = 0;
};

// The tokens of one input, and the decoded values they point to.
struct TokenList {
    std::vector<Token> tokens;
    TextArena decoded;

    std::size_t size() const { return tokens.size(); }
    bool empty() const { return tokens.empty(); }
    const Token& operator[](std::size_t i) const { return tokens[i]; }
    auto begin() const { return tokens.begin(); }
    auto end() const { return tokens.end(); }
};

TokenList tokenize_python(std::string_view code);
TokenList tokenize_shell(std::string_view code);
TokenList tokenize_javascript(std::string_view code);

const char* to_string(TokenKind k);

}  // namespace kiln::security
