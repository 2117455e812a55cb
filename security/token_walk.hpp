// Internal: small helpers for walking a token vector in the rule passes.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "security/token.hpp"

namespace kiln::security::detail {

class Walk {
public:
    explicit Walk(const std::vector<Token>& t) : t_(t) {}

    std::size_t size() const { return t_.size(); }
    const Token& operator[](std::size_t i) const { return t_[i]; }
    // Inlined everywhere: the rules call it with literals, whose length is
    // then known and the comparison needs no call to memcmp. (Not through
    // string_view's operator==: GCC stops inlining that one once a rule
    // file is large, and every name would cost a memcmp call.)
    [[gnu::always_inline]] bool is(std::size_t i, std::string_view op) const {
        return i < t_.size() && (t_[i].kind == TokenKind::Operator || t_[i].kind == TokenKind::Identifier) &&
               same(t_[i].text, op);
    }
    // True when a '.' or '?.' and a name follow token i: a dotted name goes on.
    [[gnu::always_inline]] bool dot_follows(std::size_t i) const {
        return i + 2 < t_.size() && t_[i + 1].kind == TokenKind::Operator &&
               (same(t_[i + 1].text, ".") || same(t_[i + 1].text, "?.")) && t_[i + 2].kind == TokenKind::Identifier;
    }
    bool kind(std::size_t i, TokenKind k) const { return i < t_.size() && t_[i].kind == k; }
    // Index of the bracket closing the one at `open`, or size() if none.
    std::size_t close_of(std::size_t open) const;
    // f(a, b): index of the first token of b when the parenthesis of the
    // call is at `open`, or the index of the closing one when f has one argument.
    std::size_t second_argument(std::size_t open) const;
    // Dotted name a.b.c starting at i; `end` is set past it. A view of the
    // source when the name is written without gaps (a.b.c), else built in
    // `buffer` (a . b, a?.b).
    std::string_view dotted(std::size_t i, std::size_t& end, std::string& buffer) const;
    // Folds a constant string expression starting at i: literals, '+',
    // adjacent literals, chr(N), parentheses, ''.join([...]), [::-1] and
    // base64 of a literal (b64decode('...').decode(), atob('...'),
    // Buffer.from('...', 'base64').toString()).
    // Nothing when any part is not constant. `pieces` counts the literal
    // parts joined, so callers can tell 'system' from 'sys'+'tem'.
    std::optional<std::string> fold(std::size_t i, std::size_t* end = nullptr, int* pieces = nullptr) const;
    // One argument of a call, or element of a list: tokens [begin, end).
    // `keyword` is set for name=value arguments (Python), empty otherwise.
    struct Item {
        std::size_t begin = 0, end = 0;
        std::string_view keyword;
    };
    // The top-level items between the bracket at `open` and its closing one.
    std::vector<Item> items(std::size_t open) const;
    // The constant value of an item, or nothing when any part is not constant.
    std::optional<std::string> fold_item(const Item& item) const;
    // A list of constants, opening bracket at `open`, joined with spaces:
    // ["rm", "-rf", "/"] -> "rm -rf /". Nothing when an element is not constant.
    std::optional<std::string> fold_list(std::size_t open) const;

private:
    [[gnu::always_inline]] static bool same(std::string_view a, std::string_view literal) {
        return a.size() == literal.size() && __builtin_memcmp(a.data(), literal.data(), literal.size()) == 0;
    }
    std::optional<std::string> fold_base64(std::size_t i, std::size_t& end) const;
    std::optional<std::string> fold_term(std::size_t i, std::size_t& end, int& pieces, int depth) const;
    std::optional<std::string> fold_expr(std::size_t i, std::size_t& end, int& pieces, int depth) const;
    std::span<const Token> t_;  // its size is stored, not computed from two pointers
};

}  // namespace kiln::security::detail
