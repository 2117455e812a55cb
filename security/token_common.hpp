// Internal helpers shared by the three tokenizers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "security/token.hpp"

namespace kiln::security::detail {

// A cursor over the source that tracks 1-based line and column. The
// column is derived from where the current line starts, so moving over
// bytes only has to notice newlines.
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
            line_start_ = pos_;
        }
        return c;
    }
    void skip(std::size_t n) {
        for (std::size_t i = 0; i < n && !done(); ++i) get();
    }
    // Moves forward to `to` over bytes known to hold no newline.
    void skip_within_line(std::size_t to) { pos_ = to < src_.size() ? to : src_.size(); }
    // Moves forward to `to` (at most the end), counting the lines passed.
    void advance_to(std::size_t to) {
        if (to > src_.size()) to = src_.size();
        while (pos_ < to) {
            const void* nl = std::memchr(src_.data() + pos_, '\n', to - pos_);
            if (!nl) {
                pos_ = to;
                return;
            }
            pos_ = static_cast<std::size_t>(static_cast<const char*>(nl) - src_.data()) + 1;
            ++line_;
            line_start_ = pos_;
        }
    }
    std::size_t pos() const { return pos_; }
    int line() const { return line_; }
    int col() const { return static_cast<int>(pos_ - line_start_) + 1; }
    std::string_view slice(std::size_t from) const { return src_.substr(from, pos_ - from); }
    std::string_view source() const { return src_; }

private:
    std::string_view src_;
    std::size_t pos_ = 0;
    std::size_t line_start_ = 0;
    int line_ = 1;
};

// Byte classes, one table lookup per byte in the tokenizers' inner loops.
enum CharClass : std::uint8_t {
    kIdentStart = 1,    // letters, '_', and every non-ASCII byte (UTF-8 names)
    kIdentChar = 2,     // kIdentStart and digits
    kDigit = 4,
    kJsIdentChar = 8,   // kIdentChar and '$'
    kShellMeta = 16,    // ends a shell word: blanks, newline, | & ; ( ) < >
    kShellPlain = 32,   // a shell word byte with nothing to decode: not meta, quote, $, ` or backslash
};

inline constexpr std::array<std::uint8_t, 256> kCharClasses = [] {
    std::array<std::uint8_t, 256> t{};
    for (int u = 0; u < 256; ++u) {
        bool start = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u == '_' || u >= 0x80;
        bool digit = u >= '0' && u <= '9';
        std::uint8_t k = 0;
        if (start) k |= kIdentStart;
        if (start || digit) k |= kIdentChar;
        if (digit) k |= kDigit;
        if (start || digit || u == '$') k |= kJsIdentChar;
        constexpr std::string_view kMeta = " \t\n\r|&;()<>";
        constexpr std::string_view kDecoded = "'\"$`\\";
        const char c = static_cast<char>(u);
        if (kMeta.find(c) != std::string_view::npos) k |= kShellMeta;
        else if (kDecoded.find(c) == std::string_view::npos) k |= kShellPlain;
        t[static_cast<std::size_t>(u)] = k;
    }
    return t;
}();

inline bool has_class(char c, std::uint8_t cls) { return (kCharClasses[static_cast<unsigned char>(c)] & cls) != 0; }
inline bool is_ident_start(char c) { return has_class(c, kIdentStart); }
inline bool is_ident_char(char c) { return has_class(c, kIdentChar); }
inline bool is_digit(char c) { return has_class(c, kDigit); }

// Index of the first byte at or after `from` not in class `cls`.
inline std::size_t span_of(std::string_view src, std::size_t from, std::uint8_t cls) {
    while (from < src.size() && has_class(src[from], cls)) ++from;
    return from;
}
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

// Appends tokens of an embedded expression (f-string / template `${}`) to
// `out`, shifting their positions to where the expression starts.
void append_shifted(std::vector<Token>& out, const std::vector<Token>& inner, int line, int column);

// The same for tokens already appended to `out` from index `first` on: an
// embedded expression tokenized in place.
void shift_from(std::vector<Token>& out, std::size_t first, int line, int column);

// Only strings and shell words keep a value: it is what the rules read
// instead of the text for those kinds.
inline Token make_token(TokenKind kind, std::string_view text, std::string_view value, int line, int column) {
    Token t;
    t.kind = kind;
    t.text = text;
    if (kind == TokenKind::String || kind == TokenKind::Word) t.value = value;
    t.line = line;
    t.column = column;
    return t;
}

// A decoded value: the view into the source when decoding changed nothing,
// else a copy kept in the arena.
inline std::string_view keep(std::string_view decoded, std::string_view source_slice, TextArena& arena) {
    return decoded == source_slice ? source_slice : arena.store(decoded);
}

}  // namespace kiln::security::detail
