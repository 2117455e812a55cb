// What the jail's setup process may use between clone() and execve().
//
// The setup child shares the server's memory (a CLONE_VM clone; a copy
// only in sanitizer builds and for cgroup v2's clone3), and the server is
// multi-threaded: another thread may hold the malloc lock, or any lock, at
// the moment of the clone and never release it in the child's view of
// memory. From clone() until execve() the child therefore only reads memory
// the parent prepared and makes raw system calls: no allocation, no locks,
// no stdio, no exceptions. That code lives in the sandbox/*_child.cpp files
// (the kiln_sandbox_child library), and the child-no-alloc test fails the
// build's tests if their objects reference malloc, operator new, a mutex or
// an exception throw. Failures are recorded in a ChildError, the fixed-size
// record (init_protocol.h) the child sends to the parent over the setup
// error pipe; the parent turns it into an Error with advice (hints.hpp).
#pragma once

#include <cstddef>

#include "sandbox/init_protocol.h"

namespace kiln::sandbox {

// kiln_child_error with zeroed defaults; the same bytes on the pipe.
struct ChildError {
    int err = 0;
    int hint = KILN_HINT_NONE;
    char step[sizeof kiln_child_error::step] = {};
};
static_assert(sizeof(ChildError) == sizeof(kiln_child_error) &&
                  offsetof(ChildError, err) == offsetof(kiln_child_error, err) &&
                  offsetof(ChildError, hint) == offsetof(kiln_child_error, hint) &&
                  offsetof(ChildError, step) == offsetof(kiln_child_error, step),
              "kiln-init sends the same error record");

// Records errno, the kind of step and "what arg" (truncated); returns false
// so that a step can end with `return fail(e, KILN_HINT_MOUNT, "mount", target);`.
bool fail(ChildError& e, kiln_hint hint, const char* what, const char* arg = nullptr) noexcept;

// Allocation-free helpers for the child.
std::size_t cstr_len(const char* s) noexcept;
bool write_all(int fd, const void* data, std::size_t len) noexcept;
// Writes a whole small file (created 0644, truncated).
bool write_file(const char* path, const char* data, std::size_t len) noexcept;

}  // namespace kiln::sandbox
