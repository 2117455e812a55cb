// A scratch workspace directory for the unit tests, with a secret file
// beside it (outside) for the confinement checks.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/unique_fd.hpp"

namespace kiln::test {

struct Scratch {
    std::filesystem::path base;
    std::filesystem::path ws;
    UniqueFd fd;
    Scratch() {
        char tmpl[] = "/tmp/kiln-scratch-XXXXXX";
        base = ::mkdtemp(tmpl);
        ws = base / "ws";
        std::filesystem::create_directory(ws);
        std::ofstream(base / "secret.txt") << "top secret";
        fd.reset(::open(ws.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    }
    ~Scratch() { std::filesystem::remove_all(base); }
    // Writes a file of the workspace, its directories made as needed.
    void write(const std::string& rel, const std::string& data) const {
        std::filesystem::create_directories((ws / rel).parent_path());
        std::ofstream(ws / rel, std::ios::binary | std::ios::trunc) << data;
    }
};

}  // namespace kiln::test
