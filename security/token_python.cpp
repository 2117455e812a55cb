// Python tokenizer: enough of the lexical grammar to tell code from strings
// and comments. Indentation is kept as the column of each logical line's
// first token, which the rules use to find loop bodies.
#include <algorithm>
#include <optional>
#include <string>

#include "security/token_common.hpp"

namespace kiln::security {

namespace {

using detail::Cursor;

constexpr int kMaxNesting = 8;  // f-strings inside f-string expressions

void tokenize(std::string_view code, int depth, std::vector<Token>& out, TextArena& arena);

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
// Returns the expression text (a slice of the source), stopping at the
// matching '}'.
std::string_view read_fstring_expr(Cursor& c, char quote) {
    const std::size_t start = c.pos();
    int nest = 0;
    while (!c.done()) {
        char ch = c.peek();
        if (ch == '}' && nest == 0) {
            std::string_view expr = c.slice(start);
            c.get();
            return expr;
        }
        if (ch == '\n' && quote != 0) break;
        if (ch == '{' || ch == '(' || ch == '[') ++nest;
        if ((ch == '}' || ch == ')' || ch == ']') && nest > 0) --nest;
        c.get();
    }
    return c.slice(start);
}

// Where a literal's body ends when it holds nothing to decode: no
// backslash, and no brace in an f-string. Returns the end of the body and
// the length of the closing quotes (0 when unterminated), or nothing when
// the body needs decoding.
struct PlainEnd {
    std::size_t end;
    std::size_t close;
};
std::optional<PlainEnd> plain_body_end(std::string_view src, std::size_t from, char q, bool triple, bool fmt) {
    for (std::size_t i = from; i < src.size(); ++i) {
        const char ch = src[i];
        if (ch == q) {
            if (!triple) return PlainEnd{i, 1};
            if (i + 2 < src.size() && src[i + 1] == q && src[i + 2] == q) return PlainEnd{i, 3};
        } else if (ch == '\\' || (fmt && (ch == '{' || ch == '}'))) {
            return std::nullopt;
        } else if (ch == '\n' && !triple) {
            return PlainEnd{i, 0};
        }
    }
    return PlainEnd{src.size(), 0};
}

// The general case: escapes, line continuations, f-string braces. The
// tokens of f-string expressions go to `embedded`.
std::string decode_body(Cursor& c, char q, bool triple, bool raw, bool fmt, int depth, bool& interpolated,
                        std::vector<Token>& embedded, TextArena& arena) {
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
            std::string_view expr = read_fstring_expr(c, triple ? 0 : q);
            interpolated = true;
            if (depth < kMaxNesting) {
                const std::size_t first = embedded.size();
                tokenize(expr, depth + 1, embedded, arena);
                detail::shift_from(embedded, first, el, ec);
            }
            continue;
        }
        value += c.get();
    }
    return value;
}

// Appends the string token, then the tokens of its f-string expressions.
void read_string(Cursor& c, std::string_view prefix, int line, int col, std::size_t start, int depth,
                 std::vector<Token>& out, TextArena& arena) {
    const bool raw = has(prefix, 'r'), fmt = has(prefix, 'f');
    const char q = c.get();
    const bool triple = c.peek() == q && c.peek(1) == q;
    if (triple) c.skip(2);
    const std::size_t body = c.pos();
    if (auto plain = plain_body_end(c.source(), body, q, triple, fmt)) {
        c.advance_to(plain->end + plain->close);
        std::string_view value = c.source().substr(body, plain->end - body);
        out.push_back(detail::make_token(TokenKind::String, c.slice(start), value, line, col));
        return;
    }
    // The string token goes first and is filled in once its end is known;
    // the tokens of f-string expressions are appended after it as they are read.
    const std::size_t at = out.size();
    out.emplace_back();
    bool interpolated = false;
    std::string value = decode_body(c, q, triple, raw, fmt, depth, interpolated, out, arena);
    Token tok = detail::make_token(TokenKind::String, c.slice(start), arena.store(value), line, col);
    tok.interpolated = interpolated;
    out[at] = tok;
}

// Digits, letters (0x, 1e5, 3j), '_', '.', and a sign right after an exponent.
void read_number(Cursor& c) {
    while (!c.done() && (detail::is_ident_char(c.peek()) || c.peek() == '.')) {
        char prev = c.get();
        if ((prev == 'e' || prev == 'E') && (c.peek() == '+' || c.peek() == '-')) c.get();
    }
}

// Flattened: the helpers called per token (make_token, vector appends, the
// cursor) are inlined, which the compiler does not do on its own for the
// vector append; about a tenth of the tokenizer's instructions.
[[gnu::flatten]] void tokenize(std::string_view code, int depth, std::vector<Token>& out, TextArena& arena) {
    const std::size_t first = out.size();  // tokens before ours belong to the caller
    Cursor c(code);
    // One allocation up front: growing a vector of tokens past the mmap
    // threshold re-faults fresh pages on every call (measured: most of the
    // tokenizer's time on 10 KB inputs). Not for embedded expressions, which
    // append to their caller's vector: reserving exact sizes there again and
    // again would copy it each time.
    if (depth == 0) out.reserve(first + code.size() / 3 + 16);
    int brackets = 0;
    auto push_newline = [&](int line, int col) {
        if (out.size() > first && out.back().kind != TokenKind::Newline)
            out.push_back(detail::make_token(TokenKind::Newline, "\n", "\n", line, col));
    };
    while (!c.done()) {
        const char ch = c.peek();
        const std::size_t start = c.pos();
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f') {
            c.skip_within_line(start + 1);
            continue;
        }
        const int line = c.line(), col = c.col();
        if (ch == '\n') {
            c.get();
            if (brackets == 0) push_newline(line, col);
        } else if (ch == '\\' && (c.peek(1) == '\n' || (c.peek(1) == '\r' && c.peek(2) == '\n'))) {
            c.skip(c.peek(1) == '\r' ? 3 : 2);
        } else if (ch == '#') {
            c.skip_within_line(std::min(code.find('\n', start), code.size()));
        } else if (ch == '"' || ch == '\'') {
            read_string(c, "", line, col, start, depth, out, arena);
        } else if (detail::is_ident_start(ch)) {
            c.skip_within_line(detail::span_of(code, start, detail::kIdentChar));
            std::string_view word = c.slice(start);
            if ((c.peek() == '"' || c.peek() == '\'') && is_string_prefix(word)) {
                read_string(c, word, line, col, start, depth, out, arena);
            } else {
                out.push_back(detail::make_token(TokenKind::Identifier, word, {}, line, col));
            }
        } else if (detail::is_digit(ch) || (ch == '.' && detail::is_digit(c.peek(1)))) {
            read_number(c);
            out.push_back(detail::make_token(TokenKind::Number, c.slice(start), {}, line, col));
        } else {
            c.get();
            if (ch == '*' && c.peek() == '*') c.get();
            if (ch == '(' || ch == '[' || ch == '{') ++brackets;
            if ((ch == ')' || ch == ']' || ch == '}') && brackets > 0) --brackets;
            unsigned char u = static_cast<unsigned char>(ch);
            TokenKind kind = (u < 0x20 || u == 0x7f) ? TokenKind::Other : TokenKind::Operator;
            out.push_back(detail::make_token(kind, c.slice(start), {}, line, col));
        }
    }
    push_newline(c.line(), c.col());
}

}  // namespace

TokenList tokenize_python(std::string_view code) {
    TokenList list;
    tokenize(code, 0, list.tokens, list.decoded);
    return list;
}

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
