// Internal helpers shared by the three tokenizers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "security/token.hpp"

namespace kiln::security::detail {

// A cursor over the source that tracks 1-based line and column.
class Cursor {
public:
    explicit Cursor(std::string_view src) : src_(src) {}

    bool done() const { return pos_ >= src_.size(); }
    char peek(std::size_t ahead = 0) const {
        return pos_ + ahead < src_.size() ? src_[pos_ + ahead] : '\0';
    }
    bool starts_with(std::string_view s) const { return src_.substr(pos_, s.size()) == s; }
    char get() {
        char c = src_[pos_++];
        if (c == '\n') {
            ++line_;
            col_ = 1;
        } else {
            ++col_;
        }
        return c;
    }
    void skip(std::size_t n) {
        for (std::size_t i = 0; i < n && !done(); ++i) get();
    }
    std::size_t pos() const { return pos_; }
    int line() const { return line_; }
    int col() const { return col_; }
    std::string_view slice(std::size_t from) const { return src_.substr(from, pos_ - from); }

private:
    std::string_view src_;
    std::size_t pos_ = 0;
    int line_ = 1, col_ = 1;
};

inline bool is_ident_start(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u == '_' || u >= 0x80;
}
inline bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Appends code point `cp` as UTF-8.
void append_utf8(std::string& out, unsigned long cp);

// Decodes one backslash escape shared by Python, JS and bash $'...':
// \n \t \r \0 \\ \' \" \xHH \uHHHH \NNN (octal). `c` is at the character
// after the backslash; returns false when it is not a known escape (the
// caller keeps it literally).
bool decode_escape(Cursor& c, std::string& out, bool octal);

// Moves tokens of an embedded expression (f-string / template `${}`) into
// `out`, shifting their positions to where the expression starts.
void append_shifted(std::vector<Token>& out, std::vector<Token> inner, int line, int column);

Token make_token(TokenKind kind, std::string text, std::string value, int line, int column);

}  // namespace kiln::security::detail
