// What the jail's setup process may use between clone() and execve().
//
// The server is multi-threaded, so the cloned child inherits a copy of an
// address space in which another thread may have held the malloc lock at
// the moment of the clone. From clone() until execve() the child therefore
// only reads memory prepared by the parent and makes raw system calls: no
// allocation, no locks, no stdio. Failures are recorded in a ChildError,
// a fixed-size record the child sends to the parent over the error pipe.
#pragma once

#include <cstddef>

namespace kiln::sandbox {

struct ChildError {
    int err = 0;
    char step[240] = {};
};

// Records errno and "what arg" (truncated); returns false so that a step
// can end with `return fail(e, "mount", target);`.
bool fail(ChildError& e, const char* what, const char* arg = nullptr) noexcept;

// Allocation-free helpers for the child.
std::size_t cstr_len(const char* s) noexcept;
bool write_all(int fd, const void* data, std::size_t len) noexcept;
// Writes a whole small file (created 0644, truncated).
bool write_file(const char* path, const char* data, std::size_t len) noexcept;

}  // namespace kiln::sandbox
