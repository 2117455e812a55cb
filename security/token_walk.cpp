#include "security/token_walk.hpp"

#include <algorithm>
#include <cstdlib>

#include "common/text.hpp"

namespace kiln::security::detail {

std::size_t Walk::second_argument(std::size_t open) const {
    const std::size_t close = close_of(open);
    int depth = 0;
    for (std::size_t k = open + 1; k < close; ++k) {
        if (is(k, "(") || is(k, "[") || is(k, "{")) ++depth;
        if (is(k, ")") || is(k, "]") || is(k, "}")) --depth;
        if (depth == 0 && is(k, ",")) return k + 1;
    }
    return close;
}

std::optional<std::string> Walk::fold_list(std::size_t open) const {
    std::size_t close = close_of(open);
    std::string joined;
    for (std::size_t k = open + 1; k < close;) {
        std::size_t e = 0;
        auto part = fold(k, &e);
        if (!part) return std::nullopt;
        joined += (joined.empty() ? "" : " ") + *part;
        k = is(e, ",") ? e + 1 : e;
        if (k == e && e != close) return std::nullopt;
    }
    return joined;
}

std::vector<Walk::Item> Walk::items(std::size_t open) const {
    std::vector<Item> out;
    const std::size_t close = close_of(open);
    int depth = 0;
    std::size_t begin = open + 1;
    for (std::size_t k = open + 1; k <= close && k < t_.size(); ++k) {
        if (k < close && (is(k, "(") || is(k, "[") || is(k, "{"))) ++depth;
        if (k < close && (is(k, ")") || is(k, "]") || is(k, "}"))) --depth;
        if (k < close && !(depth == 0 && is(k, ","))) continue;
        if (k > begin) {
            Item item{begin, k, {}};
            if (k > begin + 1 && kind(begin, TokenKind::Identifier) && is(begin + 1, "=")) {
                item.keyword = t_[begin].text;
                item.begin = begin + 2;
            }
            out.push_back(item);
        }
        begin = k + 1;
    }
    return out;
}

std::optional<std::string> Walk::fold_item(const Item& item) const {
    std::size_t e = 0;
    auto v = fold(item.begin, &e);
    if (!v || e != item.end) return std::nullopt;
    return v;
}

std::size_t Walk::close_of(std::size_t open) const {
    if (open >= t_.size()) return t_.size();
    int depth = 0;
    for (std::size_t i = open; i < t_.size(); ++i) {
        if (t_[i].kind != TokenKind::Operator) continue;
        std::string_view s = t_[i].text;
        if (s == "(" || s == "[" || s == "{") ++depth;
        if (s == ")" || s == "]" || s == "}") {
            if (--depth == 0) return i;
        }
    }
    return t_.size();
}

std::string_view Walk::dotted(std::size_t i, std::size_t& end, std::string& buffer) const {
    end = i + 1;
    // Contiguous while every '.' and name starts where the previous token ends.
    bool contiguous = true;
    while (dot_follows(end - 1)) {
        const Token& prev = t_[end - 1];
        const Token& dot = t_[end];
        const Token& name = t_[end + 1];
        contiguous = contiguous && dot.text == "." && dot.text.data() == prev.text.data() + prev.text.size() &&
                     name.text.data() == dot.text.data() + 1;
        end += 2;
    }
    const std::string_view first = t_[i].text;
    if (contiguous) {
        const std::string_view last = t_[end - 1].text;
        return std::string_view(first.data(), static_cast<std::size_t>(last.data() + last.size() - first.data()));
    }
    buffer.assign(first);
    for (std::size_t k = i + 2; k < end; k += 2) {
        buffer += '.';
        buffer += t_[k].text;
    }
    return buffer;
}

namespace {
constexpr int kMaxFoldDepth = 16;
constexpr std::size_t kMaxFolded = 1 << 16;
}  // namespace

std::optional<std::string> Walk::fold_term(std::size_t i, std::size_t& end, int& pieces, int depth) const {
    if (i >= t_.size() || depth > kMaxFoldDepth) return std::nullopt;
    std::optional<std::string> v;
    std::size_t j = i;
    if (t_[i].kind == TokenKind::String && !t_[i].interpolated) {
        std::string s;
        while (j < t_.size() && t_[j].kind == TokenKind::String && !t_[j].interpolated) {
            s += t_[j].value;
            ++pieces;
            ++j;
        }
        v = std::move(s);
    } else if (is(i, "(")) {
        std::size_t inner_end = 0;
        v = fold_expr(i + 1, inner_end, pieces, depth + 1);
        if (!v || !is(inner_end, ")")) return std::nullopt;
        j = inner_end + 1;
    } else if (is(i, "chr") || (is(i, "String") && is(i + 2, "fromCharCode"))) {
        std::size_t k = is(i, "chr") ? i + 1 : i + 3;
        if (!is(k, "(") || !kind(k + 1, TokenKind::Number) || !is(k + 2, ")")) return std::nullopt;
        long n = std::strtol(std::string(t_[k + 1].text).c_str(), nullptr, 0);
        if (n <= 0 || n > 127) return std::nullopt;
        v = std::string(1, static_cast<char>(n));
        ++pieces;
        j = k + 3;
    } else if (auto decoded = fold_base64(i, j)) {
        v = std::move(decoded);
        pieces += 2;  // an encoded constant is an obfuscated one
    } else {
        return std::nullopt;
    }
    // Suffixes: [::-1] reversal and sep.join([...]).
    while (true) {
        if (is(j, "[") && is(j + 1, ":") && is(j + 2, ":") && is(j + 3, "-") && kind(j + 4, TokenKind::Number) &&
            t_[j + 4].text == "1" && is(j + 5, "]")) {
            std::reverse(v->begin(), v->end());
            j += 6;
            continue;
        }
        if (is(j, ".") && is(j + 1, "join") && is(j + 2, "(") && (is(j + 3, "[") || is(j + 3, "("))) {
            std::size_t close = close_of(j + 3);
            std::string joined;
            std::size_t k = j + 4;
            bool first = true;
            while (k < close) {
                std::size_t e = 0;
                auto part = fold_expr(k, e, pieces, depth + 1);
                if (!part) return std::nullopt;
                if (!first) joined += *v;
                joined += *part;
                first = false;
                k = is(e, ",") ? e + 1 : e;
                if (e == k && e != close) return std::nullopt;
            }
            if (!is(close + 1, ")")) return std::nullopt;
            v = std::move(joined);
            j = close + 2;
            continue;
        }
        break;
    }
    end = j;
    return v;
}

std::optional<std::string> Walk::fold_base64(std::size_t i, std::size_t& end) const {
    // The decoder's own name, after an optional module: base64.b64decode.
    std::size_t k = is(i, "base64") && is(i + 1, ".") ? i + 2 : i;
    const bool python = is(k, "b64decode") || is(k, "standard_b64decode") || is(k, "urlsafe_b64decode");
    const bool atob = is(k, "atob");
    const bool buffer = is(k, "Buffer") && is(k + 1, ".") && is(k + 2, "from");
    if (!python && !atob && !buffer) return std::nullopt;
    k = buffer ? k + 3 : k + 1;
    if (!is(k, "(") || !kind(k + 1, TokenKind::String) || t_[k + 1].interpolated) return std::nullopt;
    const std::string_view encoded = t_[k + 1].value;
    k += 2;
    if (buffer) {
        if (!is(k, ",") || !kind(k + 1, TokenKind::String) || t_[k + 1].value != "base64") return std::nullopt;
        k += 2;
    }
    if (!is(k, ")")) return std::nullopt;
    ++k;
    // .decode() / .decode('utf-8') / .toString() / .toString('utf8')
    if (is(k, ".") && (is(k + 1, "decode") || is(k + 1, "toString")) && is(k + 2, "(")) {
        std::size_t close = k + 3;
        if (kind(close, TokenKind::String)) ++close;
        if (!is(close, ")")) return std::nullopt;
        k = close + 1;
    }
    auto decoded = base64_decode(encoded);
    if (!decoded) return std::nullopt;
    end = k;
    return decoded;
}

std::optional<std::string> Walk::fold_expr(std::size_t i, std::size_t& end, int& pieces, int depth) const {
    auto v = fold_term(i, end, pieces, depth);
    if (!v) return std::nullopt;
    while (is(end, "+")) {
        std::size_t e = 0;
        auto rhs = fold_term(end + 1, e, pieces, depth);
        if (!rhs || v->size() + rhs->size() > kMaxFolded) return std::nullopt;
        *v += *rhs;
        end = e;
    }
    return v;
}

std::optional<std::string> Walk::fold(std::size_t i, std::size_t* end, int* pieces) const {
    std::size_t e = 0;
    int p = 0;
    auto v = fold_expr(i, e, p, 0);
    if (!v) return std::nullopt;
    // A constant followed by more expression ('x' + name, 'x' % y) is not constant.
    if (e < t_.size() && t_[e].kind == TokenKind::Operator) {
        std::string_view s = t_[e].text;
        if (s != "," && s != ")" && s != "]" && s != "}" && s != ";" && s != ":") return std::nullopt;
    } else if (e < t_.size() && t_[e].kind != TokenKind::Newline) {
        return std::nullopt;
    }
    if (end) *end = e;
    if (pieces) *pieces = p;
    return v;
}

}  // namespace kiln::security::detail
