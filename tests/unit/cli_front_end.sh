#!/bin/sh
# kiln's front end: it declares only the subcommand argv names, so check
# that --help still lists every command, that a missing or unknown
# subcommand is still a usage error, and that a global option's value is
# never taken for the subcommand.
#   cli_front_end.sh KILN
set -u
kiln=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")  # absolute: the test changes directory
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
commands="serve run check audit trust selftest config version token"

expect() {  # expect CODE DESCRIPTION -- ARGS...
    want=$1 what=$2
    shift 3
    "$kiln" "$@" >"$tmp/out" 2>&1
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL $what: exit $got, want $want"
        sed 's/^/    /' "$tmp/out"
        fail=1
    else
        echo "ok   $what (exit $got)"
    fi
}

lists_every_command() {  # lists_every_command DESCRIPTION
    for c in $commands; do
        if ! grep -q "^ *$c " "$tmp/out"; then
            echo "FAIL $1: '$c' missing from the command list"
            fail=1
        fi
    done
}

expect 0 "--help" -- --help
lists_every_command "--help"
expect 64 "no subcommand is a usage error" --
expect 64 "unknown subcommand is a usage error" -- bogus
expect 0 "a subcommand's own help" -- run --help
grep -q -- "--validation" "$tmp/out" || { echo "FAIL run --help lacks --validation"; fail=1; }

: >"$tmp/run"
cd "$tmp" || exit 1
expect 0 "-c run version: 'run' is the config file, not the subcommand" -- -c run version
grep -q "^kiln " "$tmp/out" || { echo "FAIL -c run version printed no version"; fail=1; }
expect 0 "--set KEY=VALUE before the subcommand" -- --set server.log_level=info version
expect 64 "extra words after the subcommand are a usage error" -- version extra
expect 64 "serve --http with a bad address is a usage error" -- serve --http 8080
grep -q "expected host:port" "$tmp/out" || { echo "FAIL the --http error does not say what an address looks like"; fail=1; }

# kiln token new: the token, then a tokens-file line holding its SHA-256.
expect 0 "token new prints a token and its line" -- token new --principal ci-bot --scope kiln:read
token=$(sed -n 1p "$tmp/out")
want="ci-bot sha256:$(printf %s "$token" | sha256sum | cut -d' ' -f1) kiln:read"
grep -qx "$want" "$tmp/out" || { echo "FAIL token new: no line '$want'"; sed 's/^/    /' "$tmp/out"; fail=1; }
expect 64 "token new refuses a principal the tokens file could not hold" -- token new --principal "a b"

exit $fail
