// JavaScript tokenizer. Template literals keep their literal parts as the
// string value; the ${...} expressions inside are tokenized as code and
// emitted right after the template. A '/' starts a regular expression when
// the previous token cannot end an expression, the usual heuristic; regex
// bodies are Other tokens so their text never reads as a path or a call.
#include "security/token_common.hpp"

namespace kiln::security {

namespace {

using detail::Cursor;

constexpr int kMaxNesting = 8;

std::vector<Token> tokenize(std::string_view code, int depth);

bool is_js_ident_start(char ch) { return detail::is_ident_start(ch) || ch == '$'; }
bool is_js_ident_char(char ch) { return detail::is_ident_char(ch) || ch == '$'; }

// True when a '/' after `prev` begins a regex rather than a division.
bool regex_allowed(const std::vector<Token>& out) {
    if (out.empty()) return true;
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
    std::vector<Token> out;

    Lexer(std::string_view code, int d) : c(code), depth(d) { out.reserve(code.size() / 3 + 16); }

    void quoted_string(int line, int col, std::size_t start) {
        const char q = c.get();
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
        out.push_back(detail::make_token(TokenKind::String, std::string(c.slice(start)), value, line, col));
    }

    // The text of a ${...} expression; the cursor is just past "${".
    std::string template_expr() {
        std::string expr;
        int nest = 0;
        while (!c.done()) {
            char ch = c.peek();
            if (ch == '}' && nest == 0) {
                c.get();
                break;
            }
            if (ch == '{') ++nest;
            if (ch == '}') --nest;
            if (ch == '\'' || ch == '"' || ch == '`') {
                char q = c.get();
                expr += q;
                while (!c.done() && c.peek() != q) {
                    if (c.peek() == '\\') expr += c.get();
                    if (!c.done()) expr += c.get();
                }
                if (!c.done()) expr += c.get();
                continue;
            }
            expr += c.get();
        }
        return expr;
    }

    void template_literal(int line, int col, std::size_t start) {
        c.get();  // `
        std::string value;
        std::vector<Token> embedded;
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
                std::string expr = template_expr();
                interpolated = true;
                if (depth < kMaxNesting) detail::append_shifted(embedded, tokenize(expr, depth + 1), el, ec);
                continue;
            }
            value += c.get();
        }
        if (!c.done()) c.get();
        Token t = detail::make_token(TokenKind::String, std::string(c.slice(start)), value, line, col);
        t.interpolated = interpolated;
        out.push_back(std::move(t));
        for (auto& e : embedded) out.push_back(std::move(e));
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
        std::string text(c.slice(start));
        out.push_back(detail::make_token(TokenKind::Other, std::move(text), {}, line, col));
    }

    void run() {
        while (!c.done()) {
            const char ch = c.peek();
            const int line = c.line(), col = c.col();
            const std::size_t start = c.pos();
            if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
                c.get();
            } else if (ch == '/' && c.peek(1) == '/') {
                while (!c.done() && c.peek() != '\n') c.get();
            } else if (ch == '/' && c.peek(1) == '*') {
                c.skip(2);
                while (!c.done() && !c.starts_with("*/")) c.get();
                c.skip(2);
            } else if (ch == '#' && c.peek(1) == '!' && start == 0) {
                while (!c.done() && c.peek() != '\n') c.get();
            } else if (ch == '"' || ch == '\'') {
                quoted_string(line, col, start);
            } else if (ch == '`') {
                template_literal(line, col, start);
            } else if (ch == '/' && regex_allowed(out)) {
                regex(line, col, start);
            } else if (is_js_ident_start(ch)) {
                while (!c.done() && is_js_ident_char(c.peek())) c.get();
                std::string text(c.slice(start));
                out.push_back(detail::make_token(TokenKind::Identifier, std::move(text), {}, line, col));
            } else if (detail::is_digit(ch) || (ch == '.' && detail::is_digit(c.peek(1)))) {
                while (!c.done() && (is_js_ident_char(c.peek()) || c.peek() == '.')) c.get();
                std::string text(c.slice(start));
                out.push_back(detail::make_token(TokenKind::Number, std::move(text), {}, line, col));
            } else if (ch == '?' && c.peek(1) == '.' && !detail::is_digit(c.peek(2))) {
                c.skip(2);
                out.push_back(detail::make_token(TokenKind::Operator, "?.", ".", line, col));
            } else {
                c.get();
                std::string text(1, ch);
                unsigned char u = static_cast<unsigned char>(ch);
                TokenKind kind = (u < 0x20 || u == 0x7f) ? TokenKind::Other : TokenKind::Operator;
                out.push_back(detail::make_token(kind, std::move(text), {}, line, col));
            }
        }
    }
};

std::vector<Token> tokenize(std::string_view code, int depth) {
    Lexer lx(code, depth);
    lx.run();
    return std::move(lx.out);
}

}  // namespace

std::vector<Token> tokenize_javascript(std::string_view code) { return tokenize(code, 0); }

}  // namespace kiln::security
