// POSIX sh / bash tokenizer. A word's value is what the shell would pass as
// the argument once quotes are removed and $'...' escapes decoded, so that
// $'\x72\x6d' reads as "rm". An unquoted $IFS / ${IFS} splits the word, as
// the shell does, so rm${IFS}-rf${IFS}/ reads as three words. Expansions
// ($x, ${x}, $(...), `...`) mark the word dynamic; the commands inside a
// command substitution are tokenized too and emitted as commands of their
// own after the command that contains them.
#include <algorithm>
#include <string>

#include "security/token_common.hpp"

namespace kiln::security {

namespace {

using detail::Cursor;

constexpr int kMaxNesting = 8;

void tokenize(std::string_view code, int depth, std::vector<Token>& out, TextArena& arena);

bool is_meta(char ch) { return detail::has_class(ch, detail::kShellMeta); }

struct Lexer {
    Cursor c;
    int depth;
    std::vector<Token>& out;
    TextArena& arena;
    std::vector<Token> pending;  // commands found inside substitutions
    std::vector<std::string> heredoc_delims;
    std::string scratch;  // a word's value while it is decoded

    Lexer(std::string_view code, int d, std::vector<Token>& o, TextArena& a) : c(code), depth(d), out(o), arena(a) {
        out.reserve(out.size() + code.size() / 3 + 16);
    }

    // Reads up to the matching close of an opener already consumed
    // ("$(" or "`"), honouring quotes; returns the inner text, a slice of
    // the source.
    std::string_view read_balanced(char open, char close) {
        const std::size_t start = c.pos();
        int nest = 0;
        while (!c.done()) {
            char ch = c.peek();
            if (ch == '\\') {
                c.get();
                if (!c.done()) c.get();
                continue;
            }
            if (ch == '\'' && open != '`') {
                c.get();
                while (!c.done() && c.peek() != '\'') c.get();
                if (!c.done()) c.get();
                continue;
            }
            if (ch == close && nest == 0) {
                std::string_view inner = c.slice(start);
                c.get();
                return inner;
            }
            if (open != close && ch == open) ++nest;
            if (open != close && ch == close) --nest;
            c.get();
        }
        return c.slice(start);
    }

    void substitution(char open, char close) {
        int line = c.line(), col = c.col();
        std::string_view inner = read_balanced(open, close);
        if (depth < kMaxNesting) {
            std::vector<Token> tokens;
            tokenize(inner, depth + 1, tokens, arena);
            detail::append_shifted(pending, tokens, line, col);
        }
    }

    // Handles '$' inside a word (quoted or not). Returns true when the
    // expansion was an unquoted $IFS, which ends the word.
    bool dollar(std::string& value, Token& tok, bool quoted) {
        std::size_t start = c.pos();
        c.get();  // '$'
        char ch = c.peek();
        if (ch == '(' && c.peek(1) == '(') {
            c.skip(2);
            read_balanced('(', ')');
            if (c.peek() == ')') c.get();
        } else if (ch == '(') {
            c.get();
            substitution('(', ')');
        } else if (ch == '{') {
            c.get();
            read_balanced('{', '}');
        } else if (detail::is_ident_start(ch)) {
            while (!c.done() && detail::is_ident_char(c.peek())) c.get();
        } else if (detail::is_digit(ch) || std::string_view("@*#?$!-").find(ch) != std::string_view::npos) {
            if (ch != '\0') c.get();
        } else {
            value += '$';
            return false;
        }
        std::string_view text = c.slice(start);
        if (!quoted && (text == "$IFS" || text == "${IFS}" || text.substr(0, 6) == "${IFS:" ||
                        text.substr(0, 6) == "${IFS%" || text.substr(0, 6) == "${IFS#"))
            return true;
        value += text;
        tok.dynamic = true;
        return false;
    }

    void single_quoted(std::string& value) {
        c.get();
        while (!c.done() && c.peek() != '\'') value += c.get();
        if (!c.done()) c.get();
    }

    void ansi_c_quoted(std::string& value) {
        c.skip(2);  // $'
        while (!c.done() && c.peek() != '\'') {
            if (c.peek() == '\\') {
                c.get();
                if (c.done()) break;
                if (c.peek() == 'c' && c.peek(1) != '\0') {  // \cX control character
                    c.get();
                    value += static_cast<char>(c.get() & 0x1f);
                } else if (!detail::decode_escape(c, value, true)) {
                    value += '\\';
                    value += c.get();
                }
                continue;
            }
            value += c.get();
        }
        if (!c.done()) c.get();
    }

    void double_quoted(std::string& value, Token& tok) {
        c.get();
        while (!c.done() && c.peek() != '"') {
            char ch = c.peek();
            if (ch == '\\') {
                c.get();
                char e = c.peek();
                if (e == '$' || e == '`' || e == '"' || e == '\\') {
                    value += c.get();
                } else if (e == '\n') {
                    c.get();
                } else {
                    value += '\\';
                }
            } else if (ch == '$') {
                dollar(value, tok, true);
            } else if (ch == '`') {
                c.get();
                substitution('`', '`');
                tok.dynamic = true;
            } else {
                value += c.get();
            }
        }
        if (!c.done()) c.get();
    }

    // One word, from the current position to the next metacharacter.
    void word() {
        Token tok = detail::make_token(TokenKind::Word, "", "", c.line(), c.col());
        std::size_t start = c.pos();
        // Most words (ls, -la, /workspace/out) have nothing to decode: the
        // value is the text.
        std::string_view src = c.source();
        const std::size_t plain_end = detail::span_of(src, start, detail::kShellPlain);
        if (plain_end == src.size() || is_meta(src[plain_end])) {
            c.skip_within_line(plain_end);
            tok.text = tok.value = c.slice(start);
            if (!tok.text.empty()) out.push_back(tok);
            return;
        }
        std::string& value = scratch;
        value.clear();
        while (!c.done() && !is_meta(c.peek())) {
            char ch = c.peek();
            if (ch == '\'') {
                single_quoted(value);
            } else if (ch == '"') {
                double_quoted(value, tok);
            } else if (ch == '$' && c.peek(1) == '\'') {
                ansi_c_quoted(value);
            } else if (ch == '$' && c.peek(1) == '"') {
                c.get();
                double_quoted(value, tok);
            } else if (ch == '$') {
                if (dollar(value, tok, false)) break;
            } else if (ch == '`') {
                c.get();
                substitution('`', '`');
                tok.dynamic = true;
            } else if (ch == '\\') {
                c.get();
                if (c.peek() == '\n') {
                    c.get();
                } else if (!c.done()) {
                    value += c.get();
                }
            } else {
                value += c.get();
            }
        }
        tok.text = c.slice(start);
        tok.value = detail::keep(value, tok.text, arena);
        // A word that was nothing but $IFS keeps its text so the rules can
        // still see the obfuscation.
        if (!tok.text.empty()) out.push_back(tok);
    }

    void flush_pending(int line, int col) {
        if (pending.empty()) return;
        out.push_back(detail::make_token(TokenKind::Newline, "\n", "\n", line, col));
        out.insert(out.end(), pending.begin(), pending.end());
        pending.clear();
        out.push_back(detail::make_token(TokenKind::Newline, "\n", "\n", line, col));
    }

    // Here-document bodies are data for the command that reads them; they
    // are kept as one String token so a rule can analyse `bash <<EOF`.
    void heredoc_bodies() {
        for (const auto& delim : heredoc_delims) {
            int line = c.line(), col = c.col();
            std::size_t start = c.pos();
            // The body is every line before the delimiter's: one slice.
            std::size_t body_end = start;
            while (!c.done()) {
                std::size_t ls = c.pos();
                while (!c.done() && c.peek() != '\n') c.get();
                std::string_view l = c.slice(ls);
                while (!l.empty() && l.front() == '\t') l.remove_prefix(1);
                if (!c.done()) c.get();
                if (l == delim) break;
                body_end = c.pos();
            }
            std::string_view body = c.source().substr(start, body_end - start);
            out.push_back(detail::make_token(TokenKind::String, c.slice(start), body, line, col));
        }
        heredoc_delims.clear();
    }

    void heredoc_start() {
        while (c.peek() == ' ' || c.peek() == '\t') c.get();
        std::string delim;
        while (!c.done() && !is_meta(c.peek())) {
            char ch = c.get();
            if (ch != '\'' && ch != '"' && ch != '\\') delim += ch;
        }
        if (!delim.empty()) heredoc_delims.push_back(delim);
    }

    void op() {
        static constexpr std::string_view kOps[] = {"<<<", "<<-", "&>>", ";;&", "&&", "||", ";;", "|&", ">>", "<<",
                                                     ">&",  "<&",  "&>",  ">|",  "<>", "<(", ">("};
        int line = c.line(), col = c.col();
        const std::size_t start = c.pos();
        std::size_t len = 1;
        for (auto o : kOps) {
            if (c.peek() == o[0] && c.peek(1) == o[1] && c.starts_with(o)) {
                len = o.size();
                break;
            }
        }
        c.skip(len);
        std::string_view text = c.slice(start);
        if (text == "<(" || text == ">(") {
            substitution('(', ')');
            std::string_view shown = text == "<(" ? "<(...)" : ">(...)";
            out.push_back(detail::make_token(TokenKind::Word, shown, "", line, col));
            out.back().dynamic = true;
            return;
        }
        bool separator = text == ";" || text == "&" || text == "&&" || text == "||" || text == "|" || text == ";;" ||
                         text == "|&" || text == ")";
        if (separator) flush_pending(line, col);
        const bool heredoc = text == "<<" || text == "<<-";
        out.push_back(detail::make_token(TokenKind::Operator, text, {}, line, col));
        if (heredoc) heredoc_start();
    }

    // Flattened like the Python tokenizer's loop: per-token helpers inlined.
    [[gnu::flatten]] void run() {
        while (!c.done()) {
            char ch = c.peek();
            if (ch == ' ' || ch == '\t' || ch == '\r') {
                c.skip_within_line(c.pos() + 1);
                continue;
            }
            int line = c.line(), col = c.col();
            if (ch == '\n') {
                flush_pending(line, col);
                c.get();
                if (!heredoc_delims.empty()) heredoc_bodies();
                if (out.empty() || out.back().kind != TokenKind::Newline)
                    out.push_back(detail::make_token(TokenKind::Newline, "\n", "\n", line, col));
            } else if (ch == '\\' && c.peek(1) == '\n') {
                c.skip(2);
            } else if (ch == '#') {
                c.skip_within_line(std::min(c.source().find('\n', c.pos()), c.source().size()));
            } else if (is_meta(ch)) {
                op();
            } else {
                word();
            }
        }
        flush_pending(c.line(), c.col());
        if (!out.empty() && out.back().kind != TokenKind::Newline)
            out.push_back(detail::make_token(TokenKind::Newline, "\n", "\n", c.line(), c.col()));
    }
};

void tokenize(std::string_view code, int depth, std::vector<Token>& out, TextArena& arena) {
    Lexer(code, depth, out, arena).run();
}

}  // namespace

TokenList tokenize_shell(std::string_view code) {
    TokenList list;
    tokenize(code, 0, list.tokens, list.decoded);
    return list;
}

}  // namespace kiln::security
