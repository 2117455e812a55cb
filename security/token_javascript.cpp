// JavaScript tokenizer. Template literals keep their literal parts as the
// string value; the ${...} expressions inside are tokenized as code and
// emitted right after the template. A '/' starts a regular expression when
// the previous token cannot end an expression, the usual heuristic; regex
// bodies are Other tokens so their text never reads as a path or a call.
#include <algorithm>
#include <optional>
#include <string>

#include "security/token_common.hpp"

namespace kiln::security {

namespace {

using detail::Cursor;

constexpr int kMaxNesting = 8;

void tokenize(std::string_view code, int depth, std::vector<Token>& out, TextArena& arena);

bool is_js_ident_start(char ch) { return detail::is_ident_start(ch) || ch == '$'; }
bool is_js_ident_char(char ch) { return detail::has_class(ch, detail::kJsIdentChar); }

// True when a '/' after the last token begins a regex rather than a
// division. Tokens before `first` belong to an enclosing template.
bool regex_allowed(const std::vector<Token>& out, std::size_t first) {
    if (out.size() == first) return true;
    const Token& p = out.back();
    switch (p.kind) {
        case TokenKind::Number:
        case TokenKind::String:
        case TokenKind::Other:
            return false;
        case TokenKind::Identifier:
            return p.text == "return" || p.text == "typeof" || p.text == "case" || p.text == "do" ||
                   p.text == "else" || p.text == "in" || p.text == "of" || p.text == "new" ||
                   p.text == "delete" || p.text == "void" || p.text == "throw" || p.text == "yield" ||
                   p.text == "await";
        case TokenKind::Operator:
            return p.text != ")" && p.text != "]" && p.text != "}";
        case TokenKind::Word:
        case TokenKind::Newline:
            return true;
    }
    return true;
}

struct Lexer {
    Cursor c;
    int depth;
    std::vector<Token>& out;
    const std::size_t first;  // tokens before this index belong to the caller
    TextArena& arena;

    // Embedded expressions append to their caller's vector and reserve
    // nothing: reserving exact sizes again and again would copy it each time.
    Lexer(std::string_view code, int d, std::vector<Token>& o, TextArena& a)
        : c(code), depth(d), out(o), first(o.size()), arena(a) {
        if (depth == 0) out.reserve(out.size() + code.size() / 3 + 16);
    }

    // Length of a literal body with nothing to decode, stopping at any of
    // `stops`, or nothing when a backslash comes first.
    std::optional<std::size_t> plain_run(std::string_view stops) const {
        std::string_view src = c.source();
        for (std::size_t i = c.pos(); i < src.size(); ++i) {
            if (src[i] == '\\') return std::nullopt;
            if (stops.find(src[i]) != std::string_view::npos) return i - c.pos();
        }
        return src.size() - c.pos();
    }

    void quoted_string(int line, int col, std::size_t start) {
        const char q = c.get();
        const char stops[] = {q, '\n'};
        if (auto n = plain_run(std::string_view(stops, 2))) {
            std::string_view value = c.source().substr(c.pos(), *n);
            c.advance_to(c.pos() + *n);
            if (c.peek() == q) c.get();
            out.push_back(detail::make_token(TokenKind::String, c.slice(start), value, line, col));
            return;
        }
        std::string value;
        while (!c.done() && c.peek() != q && c.peek() != '\n') {
            if (c.peek() == '\\') {
                c.get();
                if (c.done()) break;
                if (c.peek() == '\n') {
                    c.get();
                } else if (!detail::decode_escape(c, value, false)) {
                    value += c.get();
                }
                continue;
            }
            value += c.get();
        }
        if (c.peek() == q) c.get();
        out.push_back(detail::make_token(TokenKind::String, c.slice(start), arena.store(value), line, col));
    }

    // The text of a ${...} expression (a slice of the source); the cursor
    // is just past "${".
    std::string_view template_expr() {
        const std::size_t start = c.pos();
        int nest = 0;
        while (!c.done()) {
            char ch = c.peek();
            if (ch == '}' && nest == 0) {
                std::string_view expr = c.slice(start);
                c.get();
                return expr;
            }
            if (ch == '{') ++nest;
            if (ch == '}') --nest;
            if (ch == '\'' || ch == '"' || ch == '`') {
                char q = c.get();
                while (!c.done() && c.peek() != q) {
                    if (c.peek() == '\\') c.get();
                    if (!c.done()) c.get();
                }
                if (!c.done()) c.get();
                continue;
            }
            c.get();
        }
        return c.slice(start);
    }

    void template_literal(int line, int col, std::size_t start) {
        c.get();  // `
        if (plain_template(line, col, start)) return;
        // The string token goes first and is filled in once its end is
        // known; the tokens of ${...} expressions are appended after it.
        const std::size_t at = out.size();
        out.emplace_back();
        std::string value;
        bool interpolated = false;
        while (!c.done() && c.peek() != '`') {
            if (c.peek() == '\\') {
                c.get();
                if (!c.done() && !detail::decode_escape(c, value, false)) value += c.get();
                continue;
            }
            if (c.peek() == '$' && c.peek(1) == '{') {
                c.skip(2);
                int el = c.line(), ec = c.col();
                std::string_view expr = template_expr();
                interpolated = true;
                if (depth < kMaxNesting) {
                    const std::size_t inner = out.size();
                    tokenize(expr, depth + 1, out, arena);
                    detail::shift_from(out, inner, el, ec);
                }
                continue;
            }
            value += c.get();
        }
        if (!c.done()) c.get();
        Token t = detail::make_token(TokenKind::String, c.slice(start), arena.store(value), line, col);
        t.interpolated = interpolated;
        out[at] = t;
    }

    // A template with no escape and no ${...}: its value is its body. The
    // cursor is just past the opening backtick; false leaves it there.
    bool plain_template(int line, int col, std::size_t start) {
        std::string_view src = c.source();
        std::size_t i = c.pos();
        while (i < src.size() && src[i] != '`') {
            if (src[i] == '\\' || (src[i] == '$' && i + 1 < src.size() && src[i + 1] == '{')) return false;
            ++i;
        }
        std::string_view value = src.substr(c.pos(), i - c.pos());
        c.advance_to(i);
        if (!c.done()) c.get();
        out.push_back(detail::make_token(TokenKind::String, c.slice(start), value, line, col));
        return true;
    }

    void regex(int line, int col, std::size_t start) {
        c.get();
        bool in_class = false;
        while (!c.done() && c.peek() != '\n') {
            char ch = c.get();
            if (ch == '\\') {
                if (!c.done()) c.get();
            } else if (ch == '[') {
                in_class = true;
            } else if (ch == ']') {
                in_class = false;
            } else if (ch == '/' && !in_class) {
                break;
            }
        }
        while (!c.done() && is_js_ident_char(c.peek())) c.get();  // flags
        out.push_back(detail::make_token(TokenKind::Other, c.slice(start), {}, line, col));
    }

    // Moves to the end of the line (or of the input), not past the newline.
    void skip_to_line_end() {
        c.skip_within_line(std::min(c.source().find('\n', c.pos()), c.source().size()));
    }

    // Flattened like the Python tokenizer's loop: per-token helpers inlined.
    [[gnu::flatten]] void run() {
        const std::string_view code = c.source();
        while (!c.done()) {
            const char ch = c.peek();
            const std::size_t start = c.pos();
            if (ch == ' ' || ch == '\t' || ch == '\r') {
                c.skip_within_line(start + 1);
                continue;
            }
            if (ch == '\n') {
                c.get();
                continue;
            }
            const int line = c.line(), col = c.col();
            if (ch == '/' && c.peek(1) == '/') {
                skip_to_line_end();
            } else if (ch == '/' && c.peek(1) == '*') {
                c.skip(2);
                c.advance_to(std::min(code.find("*/", c.pos()), code.size()));
                c.skip(2);
            } else if (ch == '#' && c.peek(1) == '!' && start == 0) {
                skip_to_line_end();
            } else if (ch == '"' || ch == '\'') {
                quoted_string(line, col, start);
            } else if (ch == '`') {
                template_literal(line, col, start);
            } else if (ch == '/' && regex_allowed(out, first)) {
                regex(line, col, start);
            } else if (is_js_ident_start(ch)) {
                c.skip_within_line(detail::span_of(code, start, detail::kJsIdentChar));
                out.push_back(detail::make_token(TokenKind::Identifier, c.slice(start), {}, line, col));
            } else if (detail::is_digit(ch) || (ch == '.' && detail::is_digit(c.peek(1)))) {
                while (!c.done() && (is_js_ident_char(c.peek()) || c.peek() == '.')) c.get();
                out.push_back(detail::make_token(TokenKind::Number, c.slice(start), {}, line, col));
            } else if (ch == '?' && c.peek(1) == '.' && !detail::is_digit(c.peek(2))) {
                c.skip(2);
                out.push_back(detail::make_token(TokenKind::Operator, "?.", ".", line, col));
            } else {
                c.get();
                unsigned char u = static_cast<unsigned char>(ch);
                TokenKind kind = (u < 0x20 || u == 0x7f) ? TokenKind::Other : TokenKind::Operator;
                out.push_back(detail::make_token(kind, c.slice(start), {}, line, col));
            }
        }
    }
};

void tokenize(std::string_view code, int depth, std::vector<Token>& out, TextArena& arena) {
    Lexer(code, depth, out, arena).run();
}

}  // namespace

TokenList tokenize_javascript(std::string_view code) {
    TokenList list;
    tokenize(code, 0, list.tokens, list.decoded);
    return list;
}

}  // namespace kiln::security
