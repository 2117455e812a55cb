#include <iostream>

#include "cli/cli.hpp"
#include "common/hash.hpp"
#include "server/bearer_tokens.hpp"

namespace kiln::cli {

// `kiln token new`: a fresh bearer token for server.auth.tokens_file. The
// token goes to the client; the file gets only its digest, so reading the
// file does not give anyone a way in.
Command register_token(CLI::App& app) {
    auto* sub = app.add_subcommand("token", "Make bearer tokens for the HTTP transport (server.auth.mode: tokens)");
    sub->require_subcommand(1);
    auto* make = sub->add_subcommand("new", "Print a fresh token, then the line that lets it in, for server.auth.tokens_file");
    auto principal = std::make_shared<std::string>();
    auto scopes = std::make_shared<std::vector<std::string>>();
    make->add_option("--principal", *principal, "Who the token stands for; audit records name them")->required();
    make->add_option("--scope", *scopes, "A scope the token grants (repeat for more)");
    return {sub, [principal, scopes](Context&) {
                if (!auth::is_principal_name(*principal)) {
                    std::cerr << "kiln: --principal '" << *principal << "': must be 1-128 letters, digits or . _ - @ :\n";
                    return static_cast<int>(kExitUsage);
                }
                auto token = auth::new_token();
                if (!token) {
                    std::cerr << "kiln: " << token.error().what() << "\n";
                    return static_cast<int>(kExitFailure);
                }
                std::string line = *principal + " sha256:" + sha256_hex(*token);
                for (const auto& s : *scopes) line += " " + s;
                // The scopes are checked by the parser that will read the line.
                if (auto parsed = auth::BearerTokens::parse(line + "\n", "--principal/--scope"); !parsed) {
                    std::cerr << "kiln: " << parsed.error().what() << "\n";
                    return static_cast<int>(kExitUsage);
                }
                std::cout << *token << "\n# add this line to server.auth.tokens_file, then send SIGHUP to kiln serve:\n"
                          << line << "\n";
                return static_cast<int>(kExitOk);
            }};
}

}  // namespace kiln::cli
