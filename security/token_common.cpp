#include "security/token_common.hpp"

#include <cstring>

namespace kiln::security {

std::string_view TextArena::store(std::string_view s) {
    if (s.empty()) return {};
    if (s.size() > left_) {
        // A value larger than a block gets a block of its own.
        std::size_t size = s.size() > kBlock ? s.size() : kBlock;
        blocks_.push_back(std::make_unique_for_overwrite<char[]>(size));
        free_ = blocks_.back().get();
        left_ = size;
    }
    char* at = free_;
    std::memcpy(at, s.data(), s.size());
    free_ += s.size();
    left_ -= s.size();
    return {at, s.size()};
}

}  // namespace kiln::security

namespace kiln::security::detail {

void append_utf8(std::string& out, unsigned long cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x110000) {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

namespace {

unsigned long read_hex(Cursor& c, int max_digits) {
    unsigned long v = 0;
    for (int i = 0; i < max_digits && hex_value(c.peek()) >= 0; ++i) v = v * 16 + hex_value(c.get());
    return v;
}

}  // namespace

bool decode_escape(Cursor& c, std::string& out, bool octal) {
    char e = c.peek();
    switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case 'e': case 'E': out += '\x1b'; break;
        case '\\': case '\'': case '"': case '`': case '$': case '/': out += e; break;
        case 'x': {
            c.get();
            if (hex_value(c.peek()) < 0) {
                out += "\\x";
                return true;
            }
            out += static_cast<char>(read_hex(c, 2));
            return true;
        }
        case 'u': {
            c.get();
            if (c.peek() == '{') {  // JS \u{1F600}
                c.get();
                unsigned long v = read_hex(c, 6);
                if (c.peek() == '}') c.get();
                append_utf8(out, v);
                return true;
            }
            append_utf8(out, read_hex(c, 4));
            return true;
        }
        case 'U': {
            c.get();
            append_utf8(out, read_hex(c, 8));
            return true;
        }
        default:
            if (octal && e >= '0' && e <= '7') {
                unsigned v = 0;
                for (int i = 0; i < 3 && c.peek() >= '0' && c.peek() <= '7'; ++i) v = v * 8 + (c.get() - '0');
                out += static_cast<char>(v & 0xFF);
                return true;
            }
            if (e == '0') {
                out += '\0';
                break;
            }
            return false;
    }
    c.get();
    return true;
}

void shift_from(std::vector<Token>& out, std::size_t first, int line, int column) {
    for (std::size_t i = first; i < out.size(); ++i) {
        Token& t = out[i];
        if (t.line == 1) t.column += column - 1;
        t.line += line - 1;
    }
}

void append_shifted(std::vector<Token>& out, const std::vector<Token>& inner, int line, int column) {
    for (Token t : inner) {
        if (t.line == 1) t.column += column - 1;
        t.line += line - 1;
        out.push_back(t);
    }
}

}  // namespace kiln::security::detail
