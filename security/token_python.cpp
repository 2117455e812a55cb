// Python tokenizer: enough of the lexical grammar to tell code from strings
// and comments. Indentation is kept as the column of each logical line's
// first token, which the rules use to find loop bodies.
#include "security/token_common.hpp"

namespace kiln::security {

namespace {

using detail::Cursor;

constexpr int kMaxNesting = 8;  // f-strings inside f-string expressions

std::vector<Token> tokenize(std::string_view code, int depth);

bool is_string_prefix(std::string_view p) {
    if (p.size() > 2) return false;
    for (char ch : p)
        if (std::string_view("rRbBuUfF").find(ch) == std::string_view::npos) return false;
    return true;
}

bool has(std::string_view prefix, char lower) {
    for (char ch : prefix)
        if (ch == lower || ch == lower - 32) return true;
    return false;
}

// Reads a "{expr}" inside an f-string; the cursor is just past the '{'.
// Returns the expression text, stopping at the matching '}'.
std::string read_fstring_expr(Cursor& c, char quote) {
    std::string expr;
    int nest = 0;
    while (!c.done()) {
        char ch = c.peek();
        if (ch == '}' && nest == 0) {
            c.get();
            break;
        }
        if (ch == '\n' && quote != 0) break;
        if (ch == '{' || ch == '(' || ch == '[') ++nest;
        if ((ch == '}' || ch == ')' || ch == ']') && nest > 0) --nest;
        expr += c.get();
    }
    return expr;
}

struct StringLit {
    Token tok;
    std::vector<Token> embedded;  // tokens of f-string expressions
};

StringLit read_string(Cursor& c, std::string_view prefix, int line, int col, std::size_t start, int depth) {
    StringLit s;
    const bool raw = has(prefix, 'r'), fmt = has(prefix, 'f');
    const char q = c.get();
    const bool triple = c.peek() == q && c.peek(1) == q;
    if (triple) c.skip(2);
    std::string value;
    while (!c.done()) {
        char ch = c.peek();
        if (ch == q && (!triple || (c.peek(1) == q && c.peek(2) == q))) {
            c.skip(triple ? 3 : 1);
            break;
        }
        if (ch == '\n' && !triple) break;  // unterminated: stop at end of line
        if (ch == '\\') {
            c.get();
            if (c.done()) break;
            if (raw) {
                value += '\\';
                value += c.get();
            } else if (c.peek() == '\n') {
                c.get();
            } else if (!detail::decode_escape(c, value, true)) {
                value += '\\';
            }
            continue;
        }
        if (fmt && ch == '}' && c.peek(1) == '}') {
            c.skip(1);
            value += c.get();
            continue;
        }
        if (fmt && ch == '{') {
            c.get();
            if (c.peek() == '{') {
                value += c.get();
                continue;
            }
            int el = c.line(), ec = c.col();
            std::string expr = read_fstring_expr(c, triple ? 0 : q);
            s.tok.interpolated = true;
            if (depth < kMaxNesting) detail::append_shifted(s.embedded, tokenize(expr, depth + 1), el, ec);
            continue;
        }
        value += c.get();
    }
    bool interpolated = s.tok.interpolated;
    s.tok = detail::make_token(TokenKind::String, std::string(c.slice(start)), std::move(value), line, col);
    s.tok.interpolated = interpolated;
    return s;
}

// Digits, letters (0x, 1e5, 3j), '_', '.', and a sign right after an exponent.
void read_number(Cursor& c) {
    while (!c.done() && (detail::is_ident_char(c.peek()) || c.peek() == '.')) {
        char prev = c.get();
        if ((prev == 'e' || prev == 'E') && (c.peek() == '+' || c.peek() == '-')) c.get();
    }
}

std::vector<Token> tokenize(std::string_view code, int depth) {
    std::vector<Token> out;
    Cursor c(code);
    // One allocation up front: growing a vector of tokens past the mmap
    // threshold re-faults fresh pages on every call (measured: most of the
    // tokenizer's time on 10 KB inputs).
    out.reserve(code.size() / 3 + 16);
    int brackets = 0;
    auto push_newline = [&](int line, int col) {
        if (!out.empty() && out.back().kind != TokenKind::Newline)
            out.push_back(detail::make_token(TokenKind::Newline, "\n", "\n", line, col));
    };
    while (!c.done()) {
        const char ch = c.peek();
        const int line = c.line(), col = c.col();
        const std::size_t start = c.pos();
        if (ch == '\n') {
            c.get();
            if (brackets == 0) push_newline(line, col);
        } else if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f') {
            c.get();
        } else if (ch == '\\' && (c.peek(1) == '\n' || (c.peek(1) == '\r' && c.peek(2) == '\n'))) {
            c.skip(c.peek(1) == '\r' ? 3 : 2);
        } else if (ch == '#') {
            while (!c.done() && c.peek() != '\n') c.get();
        } else if (ch == '"' || ch == '\'') {
            StringLit s = read_string(c, "", line, col, start, depth);
            out.push_back(std::move(s.tok));
            for (auto& t : s.embedded) out.push_back(std::move(t));
        } else if (detail::is_ident_start(ch)) {
            while (!c.done() && detail::is_ident_char(c.peek())) c.get();
            std::string_view word = c.slice(start);
            if ((c.peek() == '"' || c.peek() == '\'') && is_string_prefix(word)) {
                StringLit s = read_string(c, word, line, col, start, depth);
                out.push_back(std::move(s.tok));
                for (auto& t : s.embedded) out.push_back(std::move(t));
            } else {
                out.push_back(detail::make_token(TokenKind::Identifier, std::string(word), {}, line, col));
            }
        } else if (detail::is_digit(ch) || (ch == '.' && detail::is_digit(c.peek(1)))) {
            read_number(c);
            std::string text(c.slice(start));
            out.push_back(detail::make_token(TokenKind::Number, std::move(text), {}, line, col));
        } else {
            c.get();
            if (ch == '*' && c.peek() == '*') c.get();
            if (ch == '(' || ch == '[' || ch == '{') ++brackets;
            if ((ch == ')' || ch == ']' || ch == '}') && brackets > 0) --brackets;
            std::string text(c.slice(start));
            unsigned char u = static_cast<unsigned char>(ch);
            TokenKind kind = (u < 0x20 || u == 0x7f) ? TokenKind::Other : TokenKind::Operator;
            out.push_back(detail::make_token(kind, std::move(text), {}, line, col));
        }
    }
    push_newline(c.line(), c.col());
    return out;
}

}  // namespace

std::vector<Token> tokenize_python(std::string_view code) { return tokenize(code, 0); }

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
