#include "security/language.hpp"

#include <string>

namespace kiln::security {

Result<Language> parse_language(std::string_view name) {
    if (name == "python" || name == "python3" || name == "py") return Language::Python;
    if (name == "bash" || name == "sh" || name == "shell") return Language::Shell;
    if (name == "javascript" || name == "js" || name == "node") return Language::JavaScript;
    return make_error("parse language", "unknown language '" + std::string(name) +
                                            "' (use python, bash, sh or javascript)");
}

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// "#!/usr/bin/env python3" -> "python3"; "#!/bin/bash -e" -> "bash".
std::string_view shebang_program(std::string_view code) {
    if (code.substr(0, 2) != "#!") return {};
    std::string_view line = code.substr(2, code.find('\n') == std::string_view::npos ? code.size() - 2
                                                                                     : code.find('\n') - 2);
    auto word_end = [&](std::size_t from) {
        std::size_t e = line.find_first_of(" \t", from);
        return e == std::string_view::npos ? line.size() : e;
    };
    std::size_t start = line.find_first_not_of(" \t");
    if (start == std::string_view::npos) return {};
    std::string_view prog = line.substr(start, word_end(start) - start);
    if (auto slash = prog.rfind('/'); slash != std::string_view::npos) prog = prog.substr(slash + 1);
    if (prog == "env") {
        std::size_t next = line.find_first_not_of(" \t", word_end(start));
        if (next == std::string_view::npos) return {};
        prog = line.substr(next, word_end(next) - next);
    }
    return prog;
}

}  // namespace

Result<Language> guess_language(std::string_view path, std::string_view code) {
    if (ends_with(path, ".py")) return Language::Python;
    if (ends_with(path, ".sh") || ends_with(path, ".bash")) return Language::Shell;
    if (ends_with(path, ".js") || ends_with(path, ".mjs") || ends_with(path, ".cjs")) return Language::JavaScript;
    std::string_view prog = shebang_program(code);
    if (prog.substr(0, 6) == "python") return Language::Python;
    if (prog == "sh" || prog == "bash" || prog == "dash" || prog == "zsh") return Language::Shell;
    if (prog == "node" || prog == "nodejs") return Language::JavaScript;
    return make_error("guess language", "cannot tell the language of '" + std::string(path) +
                                            "' from its extension or #! line; pass --language");
}

const char* to_string(Language l) {
    switch (l) {
        case Language::Python: return "python";
        case Language::Shell: return "shell";
        case Language::JavaScript: return "javascript";
    }
    return "unknown";
}

}  // namespace kiln::security
