// Files that hold secrets (keys, bearer tokens): one rule for reading them.
#pragma once

#include <string>

#include "common/result.hpp"

namespace kiln {

// The file's bytes. Refuses a file that group or others may read or write,
// the way ssh refuses a private key with loose permissions; `what` names
// the secret in the error ("audit HMAC key").
Result<std::string> read_secret_file(const std::string& path, const char* what);

}  // namespace kiln
