// libFuzzer entry for one language's tokenizer (KILN_FUZZ_LANGUAGE). Each
// input is tokenized, every token is checked for sane positions, and the
// whole assess() pipeline runs on it: it must neither crash, hang, nor
// throw, whatever the bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "security/token.hpp"
#include "security/validator.hpp"

namespace {

using namespace kiln::security;

#define KILN_STR2(a) #a
#define KILN_STR(a) KILN_STR2(a)

constexpr std::string_view kLanguage = KILN_STR(KILN_FUZZ_LANGUAGE);

TokenList tokenize(Language lang, std::string_view code) {
    switch (lang) {
        case Language::Python: return tokenize_python(code);
        case Language::Shell: return tokenize_shell(code);
        case Language::JavaScript: return tokenize_javascript(code);
    }
    return {};
}

const Policy& policy() {
    static const Policy p = [] {
        kiln::PolicyConfig pc;
        pc.preset = "paranoid";  // allowlist on: exercises C005 too
        auto r = load_policy(pc);
        if (!r) std::abort();
        return *r;
    }();
    return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const Language lang = *parse_language(kLanguage);
    std::string_view code(reinterpret_cast<const char*>(data), size);
    for (const Token& t : tokenize(lang, code)) {
        // Positions point into the input (or just past its end).
        if (t.line < 1 || t.column < 1 || static_cast<std::size_t>(t.line) > size + 1) std::abort();
    }
    Assessment a = assess(lang, code, {}, policy());
    if (a.threats.size() != 5) std::abort();
    (void)a.to_json().dump();
    return 0;
}
