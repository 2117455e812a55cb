#!/bin/sh
# Fails if an object of the jail's setup child (kiln_sandbox_child, the
# sandbox/*_child.cpp files and child.cpp) references anything that may
# allocate, take a lock or throw: between clone() and execve() the child
# shares the server's memory, where another thread may hold those locks
# (child.hpp). Usage: check_child_no_alloc.sh libkiln_sandbox_child.a
set -eu
lib=$1
[ -f "$lib" ] || { echo "no such library: $lib" >&2; exit 2; }
command -v nm >/dev/null || { echo "nm not found (binutils)" >&2; exit 2; }
forbidden='^(malloc|calloc|realloc|free|aligned_alloc|posix_memalign|operator new|operator delete|pthread_mutex_lock|std::__throw|__cxa_allocate_exception|__cxa_throw|printf|fprintf|snprintf|strerror)'
# nm prints "lib.a:obj.o:" headers with -A; one "U symbol" per reference.
found=$(nm -A -C --undefined-only "$lib" | sed -E 's/^[^:]*:([^:]*):[[:space:]]*U[[:space:]]+/\1 /' |
        awk -v re="$forbidden" '{ obj=$1; $1=""; sub(/^ /, ""); if ($0 ~ re) print obj ": " $0 }')
if [ -n "$found" ]; then
    echo "the setup child's code references what it must not call between clone() and execve():" >&2
    echo "$found" >&2
    exit 1
fi
# The child's own calls stay in this library: a kiln function defined
# elsewhere is server code, which may allocate.
defined=$(nm -C --defined-only "$lib" | sed -nE 's/^[0-9a-f]+ [TtWw] //p' | sort -u)
outside=$(nm -C --undefined-only "$lib" | sed -nE 's/^[[:space:]]*U (kiln::.*)$/\1/p' | sort -u |
          while IFS= read -r sym; do printf '%s\n' "$defined" | grep -qxF "$sym" || echo "$sym"; done)
if [ -n "$outside" ]; then
    echo "the setup child's code calls kiln functions outside kiln_sandbox_child (move them to a *_child.cpp):" >&2
    echo "$outside" >&2
    exit 1
fi
objects=$(ar t "$lib" | wc -l)
echo "checked $objects objects of $lib: no allocation, locks or throws"
